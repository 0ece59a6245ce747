/** Most texts a response keeps for ex.output; past it, texts are still inspected but no longer recorded. */
const MAX_KEPT_TEXTS = 4096;

/**
 * How much released text one response may keep for its record (ex.output: the trace, a final check, token
 * estimates): an endless stream or a huge body must not grow memory. Shared by every text of the response.
 */
export class OutputBudget {
  /** Set once some text was not kept. */
  truncated = false;
  private texts = 0;

  constructor(private chars: number) {}

  /** Whether one more text may be kept at all. */
  admit(): boolean {
    if (this.texts >= MAX_KEPT_TEXTS) {
      this.truncated = true;
      return false;
    }
    this.texts++;
    return true;
  }

  /** The part of `text` that still fits. */
  take(text: string): string {
    if (this.chars >= text.length) {
      this.chars -= text.length;
      return text;
    }
    this.truncated = true;
    const piece = text.slice(0, this.chars);
    this.chars = 0;
    return piece;
  }
}

/** Parts smaller than this are joined into one, so a text of many tiny deltas costs about its length. */
const PART_CHARS = 4096;

/** One text kept within an OutputBudget, built from many pieces. */
export class KeptText {
  private parts: string[] = [];
  private small: string[] = [];
  private smallChars = 0;
  /** Some of this text was not kept. */
  truncated = false;

  constructor(
    private readonly budget: OutputBudget,
    /** This text's own bound, within the budget. */
    private room = Infinity,
  ) {}

  add(text: string): void {
    if (text === '') return;
    const fits = text.length > this.room ? text.slice(0, this.room) : text;
    const piece = this.budget.take(fits);
    this.room -= piece.length;
    if (piece.length < text.length) this.truncated = true;
    if (piece === '') return;
    this.small.push(piece);
    this.smallChars += piece.length;
    if (this.smallChars >= PART_CHARS) this.seal();
  }

  toString(): string {
    this.seal();
    if (this.parts.length > 1) this.parts = [this.parts.join('')];
    return this.parts[0] ?? '';
  }

  private seal(): void {
    if (this.small.length === 0) return;
    this.parts.push(this.small.length === 1 ? this.small[0] : this.small.join(''));
    this.small = [];
    this.smallChars = 0;
  }
}
