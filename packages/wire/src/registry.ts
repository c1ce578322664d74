import type { Reader, Writer } from "./cursor.ts";

/** Every message is a plain object with a `_tag` naming its kind. */
export interface Tagged {
  readonly _tag: string;
}

/**
 * How one message kind goes on the wire: its type byte (unique across the project; ranges are
 * allocated per protocol family in docs/wire.md) and its body codec. `decode` reads the body only;
 * the frame checks that it consumed the body exactly.
 */
export interface MessageSpec<T extends Tagged> {
  readonly type: number;
  readonly tag: T["_tag"];
  encode(w: Writer, m: T): void;
  decode(r: Reader): T;
}

export function defineMessage<T extends Tagged>(spec: MessageSpec<T>): MessageSpec<T> {
  if (!Number.isInteger(spec.type) || spec.type < 1 || spec.type > 0xff) {
    throw new RangeError(`message type for ${spec.tag} must be in [1, 255], got ${spec.type}`);
  }
  return spec;
}

/** A lookup table from type byte and from tag to spec; built once from the message families. */
export class Registry<M extends Tagged> {
  readonly #byType: (MessageSpec<M> | undefined)[] = new Array(256).fill(undefined);
  readonly #byTag = new Map<string, MessageSpec<M>>();

  constructor(specs: readonly MessageSpec<Tagged>[]) {
    for (const s of specs as readonly MessageSpec<M>[]) {
      const clash = this.#byType[s.type];
      if (clash !== undefined)
        throw new Error(`wire type 0x${s.type.toString(16)} used by ${clash.tag} and ${s.tag}`);
      if (this.#byTag.has(s.tag)) throw new Error(`wire tag ${s.tag} defined twice`);
      this.#byType[s.type] = s;
      this.#byTag.set(s.tag, s);
    }
  }

  byType(type: number): MessageSpec<M> | undefined {
    return this.#byType[type];
  }

  byTag(tag: string): MessageSpec<M> | undefined {
    return this.#byTag.get(tag);
  }

  get specs(): MessageSpec<M>[] {
    return [...this.#byTag.values()];
  }
}
