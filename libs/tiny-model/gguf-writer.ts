// A minimal GGUF v3 encoder: typed metadata key/values and F32 tensors, enough to write a model llama.cpp loads.

/** GGUF metadata value types (gguf.md `gguf_metadata_value_type`). */
const ValueType = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;

type ScalarType = 'u32' | 'i32' | 'f32' | 'bool' | 'string' | 'u64';

export type GgufValue =
  | { type: 'u32' | 'i32' | 'f32'; value: number }
  | { type: 'u64'; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; itemType: 'u32' | 'i32' | 'f32'; value: readonly number[] }
  | { type: 'array'; itemType: 'string'; value: readonly string[] };

export const gguf = {
  u32: (value: number): GgufValue => ({ type: 'u32', value }),
  i32: (value: number): GgufValue => ({ type: 'i32', value }),
  f32: (value: number): GgufValue => ({ type: 'f32', value }),
  u64: (value: bigint): GgufValue => ({ type: 'u64', value }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  string: (value: string): GgufValue => ({ type: 'string', value }),
  strings: (value: readonly string[]): GgufValue => ({ type: 'array', itemType: 'string', value }),
  f32s: (value: readonly number[]): GgufValue => ({ type: 'array', itemType: 'f32', value }),
  i32s: (value: readonly number[]): GgufValue => ({ type: 'array', itemType: 'i32', value }),
};

export interface GgufTensor {
  name: string;
  /** ggml order: `dims[0]` is the contiguous (row) dimension. */
  dims: readonly number[];
  data: Float32Array;
}

export interface GgufFile {
  metadata: ReadonlyArray<readonly [key: string, value: GgufValue]>;
  tensors: readonly GgufTensor[];
}

/** Tensor data offsets are multiples of this (GGUF's default `general.alignment`). */
const ALIGNMENT = 32;
const GGML_TYPE_F32 = 0;

/** Serialise a GGUF v3 file. Throws when a tensor's data does not match its dims. */
export function encodeGguf(file: GgufFile): Buffer {
  const out = new ByteSink();
  out.bytes(Buffer.from('GGUF', 'ascii'));
  out.u32(3);
  out.u64(BigInt(file.tensors.length));
  out.u64(BigInt(file.metadata.length));
  for (const [key, value] of file.metadata) {
    out.string(key);
    writeValue(out, value);
  }

  let offset = 0;
  const offsets: number[] = [];
  for (const t of file.tensors) {
    const elements = t.dims.reduce((a, b) => a * b, 1);
    if (elements !== t.data.length) {
      throw new Error(`tensor ${t.name}: dims ${t.dims.join('x')} hold ${elements} values but data has ${t.data.length}`);
    }
    out.string(t.name);
    out.u32(t.dims.length);
    for (const d of t.dims) out.u64(BigInt(d));
    out.u32(GGML_TYPE_F32);
    out.u64(BigInt(offset));
    offsets.push(offset);
    offset = alignUp(offset + t.data.byteLength);
  }

  out.pad(ALIGNMENT);
  const dataStart = out.length;
  file.tensors.forEach((t, i) => {
    out.padTo(dataStart + (offsets[i] ?? 0));
    out.bytes(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  });
  out.padTo(dataStart + offset);
  return out.toBuffer();
}

function writeValue(out: ByteSink, v: GgufValue): void {
  if (v.type === 'array') {
    out.u32(ValueType.array);
    out.u32(ValueType[v.itemType]);
    out.u64(BigInt(v.value.length));
    for (const item of v.value) writeScalar(out, v.itemType, item);
    return;
  }
  out.u32(ValueType[v.type]);
  writeScalar(out, v.type, v.value);
}

function writeScalar(out: ByteSink, type: ScalarType, value: number | bigint | boolean | string): void {
  switch (type) {
    case 'u32':
      return out.u32(Number(value));
    case 'i32':
      return out.i32(Number(value));
    case 'f32':
      return out.f32(Number(value));
    case 'u64':
      return out.u64(BigInt(value as number | bigint));
    case 'bool':
      return out.u8(value ? 1 : 0);
    case 'string':
      return out.string(String(value));
  }
}

const alignUp = (n: number): number => Math.ceil(n / ALIGNMENT) * ALIGNMENT;

/** Little-endian append-only byte buffer. */
class ByteSink {
  private chunks: Buffer[] = [];
  length = 0;

  bytes(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  private fixed(size: number, write: (b: Buffer) => void): void {
    const b = Buffer.alloc(size);
    write(b);
    this.bytes(b);
  }
  u8(n: number): void {
    this.fixed(1, (b) => b.writeUInt8(n));
  }
  u32(n: number): void {
    this.fixed(4, (b) => b.writeUInt32LE(n));
  }
  i32(n: number): void {
    this.fixed(4, (b) => b.writeInt32LE(n));
  }
  f32(n: number): void {
    this.fixed(4, (b) => b.writeFloatLE(n));
  }
  u64(n: bigint): void {
    this.fixed(8, (b) => b.writeBigUInt64LE(n));
  }
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(BigInt(b.length));
    this.bytes(b);
  }
  pad(alignment: number): void {
    this.padTo(Math.ceil(this.length / alignment) * alignment);
  }
  padTo(target: number): void {
    if (target > this.length) this.bytes(Buffer.alloc(target - this.length));
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}
