/**
 * One small lifecycle for the edge's parts (KubeEdge's beehive modules, without the bus): each
 * part starts once, in the order the agent lists them, and stops in the reverse order, so a part
 * may use everything started before it until its own stop returns. What a part needs is passed
 * to its constructor; parts talk through those references, never through the agent.
 */
export interface EdgePart {
  /** Short and stable: it names the part in logs ("stopping part failed"). */
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface PartLog {
  error(obj: object, msg: string): void;
}

/** The parts started so far; stops them in reverse, each once, even when one of them fails. */
export class PartSet {
  private readonly started: EdgePart[] = [];

  constructor(private readonly log: PartLog) {}

  /**
   * Starts one part. If its start fails, the parts started before it are stopped (reverse
   * order) and the error is thrown on: a half-started edge holds no ports, files or children.
   */
  async start(part: EdgePart): Promise<void> {
    try {
      await part.start();
    } catch (err) {
      await this.stopAll();
      throw err;
    }
    this.started.push(part);
  }

  /** Stops every started part, last started first. A failing stop is logged; the rest still stop. */
  async stopAll(): Promise<void> {
    for (let part = this.started.pop(); part; part = this.started.pop()) {
      try {
        await part.stop();
      } catch (err) {
        this.log.error({ part: part.name, err: (err as Error).message }, 'stopping part failed');
      }
    }
  }

  names(): string[] { return this.started.map((p) => p.name); }
}
