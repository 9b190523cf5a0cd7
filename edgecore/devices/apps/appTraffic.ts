import type { Client, PublishPacket } from 'aedes';
import type { Device, MqttGrant } from '../../../protocol/index.js';
import { mayPublishBeyondContract, mayReceiveBeyondContract, maySubscribeBeyondContract, topicSpace, type AppAclContext } from '../broker/appAcl.js';
import { principalLogFields, type Principal } from '../broker/deviceAcl.js';
import { AppIdentities, type AppCredential } from './appIdentities.js';

/**
 * The hub's side of topics beyond the twin contract: app credentials, devices' grants, the
 * general-purpose switch, and the per-app counters. deviceHub.ts keeps the twin contract and
 * asks this for everything else; the decisions themselves are appAcl.ts's pure functions.
 */
export class AppTraffic {
  readonly identities = new AppIdentities();
  private deviceGrants = new Map<string, MqttGrant>();
  private readonly ctx: AppAclContext = { deviceGrant: (name) => this.deviceGrants.get(name) };

  constructor(readonly generalPurpose: boolean, private readonly log: { warn(obj: object, msg: string): void }) {}

  setDevices(devices: readonly Device[]): void {
    this.deviceGrants = new Map(devices.flatMap((d) => (d.spec.mqtt ? [[d.metadata.name, d.spec.mqtt] as const] : [])));
  }

  credential(username: string): AppCredential | undefined {
    return this.identities.get(username);
  }

  /** True for topics outside `ef/`: decided here, not by the twin contract. */
  handles(topic: string): boolean {
    return topicSpace(topic) !== 'contract';
  }

  /**
   * A publish outside `ef/`: accepted as MQTT has it (retained kept, delivered by aedes to
   * subscribers that may receive it), or refused, which closes the connection as a refused
   * twin-contract publish does.
   */
  authorizePublish(client: Client | null, principal: Principal | undefined, packet: PublishPacket, done: (err: Error | null) => void, refused: () => void): void {
    if (principal !== undefined && mayPublishBeyondContract(principal, packet.topic, this.ctx)) {
      if (principal.kind === 'app') this.identities.count(principal.username, 'published');
      return done(null);
    }
    refused();
    this.refusedFor(principal);
    this.log.warn({ clientId: client?.id ?? null, ...principalLogFields(principal), topic: packet.topic }, 'MQTT publish refused');
    done(new Error(`not allowed to publish to ${packet.topic}`));
  }

  maySubscribe(principal: Principal, filter: string): boolean {
    return maySubscribeBeyondContract(principal, filter, this.ctx);
  }

  /** A publish or subscription refused (here or by the twin contract). */
  refusedFor(principal: Principal | undefined): void {
    if (principal?.kind === 'app') this.identities.count(principal.username, 'refused');
  }

  mayReceive(principal: Principal, topic: string): boolean {
    return mayReceiveBeyondContract(principal, topic, this.ctx);
  }

  /** One delivery made to the principal. */
  delivered(principal: Principal): void {
    if (principal.kind === 'app') this.identities.count(principal.username, 'delivered');
  }
}
