import type { Aedes } from 'aedes';

/**
 * The hub's own publishes. They run one after another, so two retained updates of one topic
 * (offline then online, or a clear then a new desired) land in the order they were made.
 */
export class BrokerPublisher {
  private broker: Aedes | null = null;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly onError: (err: unknown) => void) {}

  /** Publishes made before the broker runs are dropped: start() publishes the state afterwards. */
  attach(broker: Aedes): void {
    this.broker = broker;
  }

  /** `onFailed` runs (before the failure is reported) if the broker refuses the publish, e.g. it cannot store a retained message. */
  publishJson(topic: string, message: object, options: { qos: 0 | 1; retain: boolean }, onFailed?: () => void): void {
    const payload = Buffer.from(JSON.stringify(message));
    this.enqueue(() => this.publishNow(topic, payload, options).catch((err: unknown) => {
      onFailed?.();
      throw err;
    }));
  }

  /** Runs `task` after every publish queued before it; a failure is reported, not thrown. */
  enqueue(task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch((err: unknown) => {
      if (!this.stopped) this.onError(err);
    });
  }

  /** Resolves once everything queued so far has been published. */
  idle(): Promise<void> {
    return this.chain;
  }

  /** Failures after this are expected (the broker is going away) and not reported. */
  stop(): void {
    this.stopped = true;
  }

  publishNow(topic: string, payload: Buffer, options: { qos: 0 | 1; retain: boolean }): Promise<void> {
    const broker = this.broker;
    if (broker === null) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      broker.publish({ cmd: 'publish', topic, payload, qos: options.qos, retain: options.retain, dup: false }, (err) => (err ? reject(err) : resolve()));
    });
  }
}
