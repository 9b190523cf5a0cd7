// Everything in protocol/, the one contract cloudcore, edgecore, edgectl and the mappers share.
export * from './version.js';
export * from './labels.js';
export * from './objectMeta.js';
export * from './templates.js';
export * from './resources.js';
export * from './rollouts.js';
export * from './frames.js';
export * from './settings.js';
export * from './addresses.js';
export * from './devices.js';
export * from './mqttTopics.js';
export * from './tlsTrust.js';
export * from './edgeStatus.js';
export * from './api.js';
export * from './apiErrors.js';
export * from './certificates.js';
export * from './certificatePolicy.js';
