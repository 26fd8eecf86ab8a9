// Parse a GGUF with @huggingface/gguf and print what it read as JSON
// (BigInt as {"bigint": "..."}), for tests/interop/test_gguf.py to compare
// with its own reader.  usage: node gguf_dump.mjs FILE
import { gguf } from '@huggingface/gguf';
import path from 'node:path';

const file = path.resolve(process.argv[2]);
const { metadata, tensorInfos, tensorDataOffset } = await gguf(file, { allowLocalFile: true });
const enc = (k, v) => (typeof v === 'bigint' ? { bigint: v.toString() } : v);
console.log(JSON.stringify({ metadata, tensorInfos, tensorDataOffset }, enc));
