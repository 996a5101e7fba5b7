// The simulated node's disk: installed models (what /api/tags lists), the library it can pull from, and disk space.
import { SimHttpError } from './sim-http.js';
import { BYTES_PER_GB, canonicalName, modelBytes, type SimModelSpec } from './sim-models.js';

interface Installed {
  spec: SimModelSpec;
  /** ISO-8601 (UTC, `Z`): when the model was "written" (node start, or the end of its pull). */
  modifiedAt: string;
}

const sameModel = (a: string, b: string): boolean => a === b || canonicalName(a) === canonicalName(b);

export class SimCatalog {
  /** Bytes of disk for models; undefined = unlimited. */
  readonly diskBytes: number | undefined;
  private readonly installed: Installed[];
  /** What /api/pull can fetch: the configured pullable models plus every model the node started with. */
  private readonly library: SimModelSpec[];

  constructor(models: SimModelSpec[], pullable: SimModelSpec[], diskGb: number | undefined) {
    const now = new Date().toISOString();
    this.installed = models.map((spec) => ({ spec, modifiedAt: now }));
    this.library = [...models, ...pullable.filter((p) => !models.some((m) => sameModel(m.name, p.name)))];
    this.diskBytes = diskGb === undefined ? undefined : Math.round(diskGb * BYTES_PER_GB);
  }

  /** Installed models in the order they were added. */
  list(): ReadonlyArray<Readonly<Installed>> {
    return this.installed;
  }

  /** The installed model by name (`x` matches `x:latest`), or undefined. */
  find(name: string): SimModelSpec | undefined {
    return (this.installed.find((i) => i.spec.name === name) ?? this.installed.find((i) => sameModel(i.spec.name, name)))?.spec;
  }

  /** The installed model by name, or Ollama's 404. */
  get(name: string): SimModelSpec {
    const m = this.find(name);
    if (!m) throw new SimHttpError(404, `model '${name}' not found`);
    return m;
  }

  modifiedAt(m: SimModelSpec): string {
    return this.installed.find((i) => i.spec === m)?.modifiedAt ?? new Date(0).toISOString();
  }

  /** The pullable model by name, or undefined (the registry has no manifest for it). */
  pullable(name: string): SimModelSpec | undefined {
    return this.library.find((m) => m.name === name) ?? this.library.find((m) => sameModel(m.name, name));
  }

  usedDiskBytes(): number {
    return this.installed.reduce((s, i) => s + modelBytes(i.spec), 0);
  }

  /** Free disk, bytes; Infinity without a disk limit. */
  freeDiskBytes(): number {
    return this.diskBytes === undefined ? Infinity : Math.max(0, this.diskBytes - this.usedDiskBytes());
  }

  /** Adds (or rewrites, after a re-pull) a model; it shows in /api/tags from now on. */
  install(spec: SimModelSpec): void {
    const modifiedAt = new Date().toISOString();
    const i = this.installed.findIndex((x) => x.spec.name === spec.name);
    if (i >= 0) this.installed[i] = { spec, modifiedAt };
    else this.installed.push({ spec, modifiedAt });
  }

  /** Removes an installed model; returns it, or undefined when there was none by that name. */
  remove(name: string): SimModelSpec | undefined {
    const m = this.find(name);
    if (m) this.installed.splice(this.installed.findIndex((i) => i.spec === m), 1);
    return m;
  }
}
