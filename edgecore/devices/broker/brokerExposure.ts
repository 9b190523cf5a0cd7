import { isLoopbackHost } from '../../../protocol/index.js';

/**
 * Settings that widen who can reach or use the device broker. Each is allowed (a lab, a
 * trusted plant network) but never silent: edgecore logs each as a WARN at start and the
 * status page shows it for as long as it holds.
 */
export function brokerExposureWarnings(settings: { mqttHost: string; mqttAllowAnonymous: boolean; mqttGeneralPurpose?: boolean }): string[] {
  const warnings: string[] = [];
  if (settings.mqttGeneralPurpose === true) {
    warnings.push('general-purpose MQTT clients are allowed (--mqtt-general-purpose): anyone who reaches the broker may, without a password, publish and subscribe on every topic outside ef/ and apps/');
  }
  if (settings.mqttAllowAnonymous) {
    warnings.push('anonymous MQTT clients are allowed (--mqtt-allow-anonymous): anyone who reaches the broker acts as the device its client id names, without a password');
  }
  if (!isLoopbackHost(settings.mqttHost)) {
    warnings.push(`plain MQTT (no TLS) listens on ${settings.mqttHost}, not loopback: device passwords and data cross the network unencrypted`
      + (settings.mqttAllowAnonymous ? ' and anyone on it may connect' : ''));
  }
  return warnings;
}
