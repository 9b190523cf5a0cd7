import type { WatchEventType } from '../../store/store.js';

/**
 * Filters a watch to the objects a client selected (label selector, app, …) while keeping the
 * client's view consistent, as Kubernetes does: an object whose change makes it match is sent
 * as ADDED, and one whose change makes it stop matching is sent as DELETED.
 *
 * It remembers, per name, whether the client currently holds the object. A watch that began
 * with the full list knows everything the client holds. A watch resumed from a revision starts
 * knowing nothing: a matching change to an unknown object passes through as is, and a
 * non-matching change to an unknown object is dropped (announcing deletes of objects the client
 * never selected would flood the stream with every unrelated change).
 */
export class SelectionFilter<T> {
  /** name → held by the client; an absent name is "not held" when `knowsAll`, else unknown. */
  private readonly held = new Map<string, boolean>();

  constructor(private readonly includes: (obj: T) => boolean, private readonly knowsAll: boolean) {}

  /** Records that the client received `name` (the initial list of a watch without revision). */
  markHeld(name: string): void {
    this.held.set(name, true);
  }

  /** The event type to send for this change, or undefined to send nothing. */
  next(type: WatchEventType, name: string, obj: T): WatchEventType | undefined {
    const matches = this.includes(obj);
    const held = this.held.get(name) ?? (this.knowsAll ? false : undefined);
    if (type === 'DELETED') {
      this.held.delete(name);
      return held === true || (held === undefined && matches) ? 'DELETED' : undefined;
    }
    if (matches) this.held.set(name, true);
    else if (this.knowsAll) this.held.delete(name);
    else this.held.set(name, false);
    if (matches) return held === false ? 'ADDED' : type;
    return held === true ? 'DELETED' : undefined;
  }
}
