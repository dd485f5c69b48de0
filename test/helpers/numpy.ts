// Writes .npy and .npz files for tests that need data of a given shape (numpy itself wrote test/fixtures/numpy,
// which checks the reader against the real thing). Format: numpy.lib.format 1.0; .npz: a stored ZIP archive.
import zlib from "node:zlib";

type Descr = "<f4" | "<f8" | "<i8" | "<i4" | "|u1" | "|b1";

export function npy(descr: Descr, shape: number[], values: ArrayLike<number | bigint>): Buffer {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  const total = 10 + header.length + 1;
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const pre = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(pre);
  pre.writeUInt16LE(header.length, 8);
  const n = values.length;
  const size = Number(descr.slice(2));
  const body = Buffer.alloc(n * size);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (descr === "<f4") body.writeFloatLE(Number(v), i * 4);
    else if (descr === "<f8") body.writeDoubleLE(Number(v), i * 8);
    else if (descr === "<i8") body.writeBigInt64LE(BigInt(v), i * 8);
    else if (descr === "<i4") body.writeInt32LE(Number(v), i * 4);
    else body[i] = Number(v);
  }
  return Buffer.concat([pre, Buffer.from(header, "latin1"), body]);
}

/** A .npz (stored ZIP) holding `arrays` as KEY.npy entries. */
export function npz(arrays: Record<string, Buffer>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [key, content] of Object.entries(arrays)) {
    const name = Buffer.from(`${key}.npy`);
    const crc = zlib.crc32(content);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(content.length, 18);
    local.writeUInt32LE(content.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(content.length, 20);
    central.writeUInt32LE(content.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, content);
    centrals.push(central, name);
    offset += local.length + name.length + content.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(arrays).length, 8);
  end.writeUInt16LE(Object.keys(arrays).length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}
