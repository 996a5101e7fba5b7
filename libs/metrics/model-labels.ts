// Bounded `model` label values for metrics a process keeps itself (HTTP requests): a model gets its own value only when
// the registry knows it, and only the first `max` such models do; everything else is "other".

const OTHER_MODEL = 'other';

/** Ollama's rule: a name without a tag means `:latest`. */
const tagged = (m: string): string => (m.includes(':') ? m : `${m}:latest`);

export class ModelLabels {
  private known = new Set<string>();
  private knownAt = 0;
  private pending: Promise<void> | null = null;
  private readonly labelled = new Set<string>();

  constructor(
    /** The models registered nodes have (the cached node list). */
    private readonly models: () => Promise<readonly string[]>,
    private readonly max: number,
    /** How stale the known set may be before a model not in it makes it refresh (ms). */
    private readonly refreshMs = 1000,
  ) {}

  /** Replace the known models (a scrape read the registry anyway). */
  setKnown(models: readonly string[]): void {
    this.known = new Set(models.map(tagged));
    this.knownAt = Date.now();
  }

  private refresh(): Promise<void> {
    this.pending ??= this.models()
      .then((m) => this.setKnown(m))
      .catch(() => undefined)
      .finally(() => (this.pending = null));
    return this.pending;
  }

  /** The label value of a requested model: '' when none was named, the model, or "other". */
  async resolve(model: unknown): Promise<string> {
    if (typeof model !== 'string' || model === '') return '';
    const name = tagged(model);
    if (!this.known.has(name) && Date.now() - this.knownAt > this.refreshMs) await this.refresh();
    if (!this.known.has(name)) return OTHER_MODEL;
    if (this.labelled.has(name)) return name;
    if (this.labelled.size >= this.max) return OTHER_MODEL;
    this.labelled.add(name);
    return name;
  }
}
