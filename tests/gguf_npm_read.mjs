// Reads GGUF files written by `longrope gguf set` with an independent reader,
// @huggingface/gguf from the npm registry (run by tests/gguf_npm_check.cmake).
// argv: ORIGINAL.gguf NEW.gguf EXPECT.json; prints NPM_GGUF_OK or throws.
import { gguf } from "@huggingface/gguf";
import { readFileSync } from "node:fs";

const [orig, neu, expectPath] = process.argv.slice(2);
const expect = JSON.parse(readFileSync(expectPath, "utf8"));

async function load(path) {
  const r = await gguf(path, { allowLocalFile: true });
  const bytes = readFileSync(path);
  const data = {};
  for (const t of r.tensorInfos) {
    const n = t.shape.reduce((a, b) => a * Number(b), 1);
    const start = Number(r.tensorDataOffset) + Number(t.offset);
    const size = t.dtype === 0 ? 4 * n : t.dtype === 1 ? 2 * n : 0;
    if (size === 0) throw new Error(`${t.name}: unexpected dtype ${t.dtype}`);
    if (start + size > bytes.length) throw new Error(`${t.name}: data past the end`);
    data[t.name] = bytes.subarray(start, start + size);
  }
  return { r, data };
}

function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
}

const a = await load(orig);
const b = await load(neu);
check(b.r.metadata.version === 3, "version 3");
check(b.r.metadata["general.architecture"] === "phi3", "architecture");
check(Math.abs(b.r.metadata["phi3.rope.scaling.attn_factor"] - expect.attn_factor) < 1e-6, "attn_factor");
for (const k of Object.keys(a.r.metadata)) {
  if (k === "phi3.rope.scaling.attn_factor") continue;
  check(JSON.stringify(a.r.metadata[k], (_, v) => (typeof v === "bigint" ? v.toString() : v)) ===
        JSON.stringify(b.r.metadata[k], (_, v) => (typeof v === "bigint" ? v.toString() : v)), "metadata " + k);
}
for (const [name, values] of Object.entries(expect.factors)) {
  const buf = b.data[name];
  check(buf !== undefined, name + " present");
  const f = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  check(f.length === values.length, name + " length");
  values.forEach((v, i) => check(f[i] === v, `${name}[${i}] = ${f[i]}, expected ${v}`));
}
for (const name of Object.keys(a.data)) {
  if (name.startsWith("rope_factors_")) continue;
  check(Buffer.compare(a.data[name], b.data[name]) === 0, name + " bytes unchanged");
}
for (const t of b.r.tensorInfos) check(Number(t.offset) % 32 === 0, t.name + " aligned");
console.log("NPM_GGUF_OK");
