// A small protobuf codec driven by /schema.json, which the server generates from proto/
// when it is built. Field numbers and types come from there, never from this file.
//
// Messages are plain objects keyed by the .proto field names. A set oneof field is also
// named by `$<oneof name>`, e.g. `msg.$kind === "camera_status"`. Scalars left out of the
// bytes read as their defaults; `optional` ones stay undefined. 64-bit integers become
// Numbers (exact up to 2^53).

export class Codec {
  constructor(schema) {
    this.messages = schema.messages;
    this.enums = schema.enums;
  }

  // Relative to the page, so that a dashboard served under a path prefix finds it.
  static async load(url = "schema.json") {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`schema: ${response.status}`);
    return new Codec(await response.json());
  }

  type(name) {
    const t = this.messages[name];
    if (!t) throw new Error(`unknown message type ${name}`);
    return t;
  }

  enumName(enumType, value) {
    const values = this.enums[enumType] || {};
    return Object.keys(values).find((k) => values[k] === value) ?? String(value);
  }

  enumValue(enumType, name) {
    return (this.enums[enumType] || {})[name] ?? 0;
  }

  encode(typeName, obj) {
    const out = [];
    this.#write(typeName, obj, out);
    return new Uint8Array(out);
  }

  #write(typeName, obj, out) {
    const t = this.type(typeName);
    for (const key of Object.keys(obj)) {
      if (key.startsWith("$")) continue;
      if (!t.fields.some((f) => f.name === key)) {
        throw new Error(`${typeName} has no field ${key}`);
      }
    }
    for (const f of t.fields) {
      const v = obj[f.name];
      if (v === undefined || v === null) continue;
      for (const item of f.repeated ? v : [v]) this.#field(f, item, out);
    }
  }

  #field(f, v, out) {
    const key = (wire) => varint(BigInt((f.number << 3) | wire), out);
    switch (f.type) {
      case "string":
      case "bytes": {
        const bytes = f.type === "string" ? new TextEncoder().encode(v) : v;
        key(2);
        varint(BigInt(bytes.length), out);
        for (const b of bytes) out.push(b);
        break;
      }
      case "message": {
        const inner = [];
        this.#write(f.typeName, v, inner);
        key(2);
        varint(BigInt(inner.length), out);
        for (const b of inner) out.push(b);
        break;
      }
      case "double": {
        key(1);
        const buf = new DataView(new ArrayBuffer(8));
        buf.setFloat64(0, v, true);
        for (let i = 0; i < 8; i++) out.push(buf.getUint8(i));
        break;
      }
      case "bool":
        key(0);
        varint(v ? 1n : 0n, out);
        break;
      default: // int32, int64, uint32, uint64, enum
        key(0);
        varint(BigInt.asUintN(64, BigInt(Math.trunc(Number(v)))), out);
    }
  }

  decode(typeName, bytes) {
    return this.#read(typeName, bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  }

  #read(typeName, bytes) {
    const t = this.type(typeName);
    const obj = {};
    for (const f of t.fields) if (f.repeated) obj[f.name] = [];
    const r = { pos: 0 };
    while (r.pos < bytes.length) {
      const tag = Number(readVarint(bytes, r));
      const number = tag >>> 3;
      const wire = tag & 7;
      const f = t.fields.find((x) => x.number === number);
      let value;
      if (wire === 0) value = readVarint(bytes, r);
      else if (wire === 1) {
        value = new DataView(bytes.buffer, bytes.byteOffset + r.pos, 8).getFloat64(0, true);
        r.pos += 8;
      } else if (wire === 2) {
        const len = Number(readVarint(bytes, r));
        value = bytes.subarray(r.pos, r.pos + len);
        r.pos += len;
      } else if (wire === 5) {
        value = new DataView(bytes.buffer, bytes.byteOffset + r.pos, 4).getFloat32(0, true);
        r.pos += 4;
      } else throw new Error(`unsupported wire type ${wire} in ${typeName}`);
      if (!f) continue; // a field from a newer server
      const v = this.#convert(f, value);
      if (f.repeated) obj[f.name].push(v);
      else obj[f.name] = v;
      if (f.oneof) obj[`$${f.oneof}`] = f.name;
    }
    // proto3 leaves default values out of the bytes; put them back.
    for (const f of t.fields) {
      if (f.repeated || f.oneof || f.optional || obj[f.name] !== undefined) continue;
      if (f.type === "message") continue;
      obj[f.name] = f.type === "string" ? "" : f.type === "bool" ? false : f.type === "bytes" ? new Uint8Array() : 0;
    }
    return obj;
  }

  #convert(f, v) {
    switch (f.type) {
      case "string":
        return new TextDecoder().decode(v);
      case "bytes":
        return v.slice();
      case "message":
        return this.#read(f.typeName, v);
      case "bool":
        return v !== 0n;
      case "double":
      case "float":
        return v;
      case "int64":
      case "int32":
        return Number(BigInt.asIntN(64, v));
      default:
        return Number(v);
    }
  }
}

function varint(v, out) {
  while (v > 127n) {
    out.push(Number(v & 127n) | 128);
    v >>= 7n;
  }
  out.push(Number(v));
}

function readVarint(bytes, r) {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (r.pos >= bytes.length) throw new Error("truncated varint");
    const b = bytes[r.pos++];
    result |= BigInt(b & 127) << shift;
    if (b < 128) return result;
    shift += 7n;
  }
}
