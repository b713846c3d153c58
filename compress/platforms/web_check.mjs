// node web_check.mjs MODEL_DIR TEXTS.jsonl OUT.json --dtype fp32|q8 --task text-classification|feature-extraction
// The web bundle's check (compress/platforms/web.py): @huggingface/transformers (transformers.js) under Node, offline,
// on a local model folder, one text per call, as a page calls it. Writes per-text ids and outputs, versions, timings.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { env, pipeline, AutoTokenizer, AutoModel } from '@huggingface/transformers';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  if (i < 0) return dflt;
  const v = argv[i + 1];
  argv.splice(i, 2);
  return v;
};
const dtype = opt('--dtype', 'fp32');
const task = opt('--task', 'text-classification');
if (argv.length !== 3 || !['fp32', 'q8'].includes(dtype) || !['text-classification', 'feature-extraction'].includes(task)) {
  console.error('usage: node web_check.mjs MODEL_DIR TEXTS.jsonl OUT.json [--dtype fp32|q8] [--task text-classification|feature-extraction]');
  process.exit(2);
}
// an absolute path: a relative "a/b" looks like a hub id and would be resolved under env.localModelPath
const modelDir = path.resolve(argv[0]);
env.allowRemoteModels = false; // never the network
env.allowLocalModels = true;
env.localModelPath = path.dirname(modelDir) + '/';
env.useFSCache = false;
env.useBrowserCache = false;

const texts = fs.readFileSync(argv[1], 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l).text);
const require = createRequire(import.meta.url);
const version = (p) => { try { return require(`${p}/package.json`).version; } catch { return null; } };
const meta = { transformers_js: env.version, onnxruntime_node: version('onnxruntime-node'), node: process.version, dtype, task, n: texts.length };
const ids = (t) => Array.from(t.data, Number);
const results = [];
const t0 = performance.now();
if (task === 'text-classification') {
  const pipe = await pipeline('text-classification', modelDir, { dtype, device: 'cpu' });
  meta.load_s = (performance.now() - t0) / 1000;
  meta.model_max_length = pipe.tokenizer.model_max_length;
  const t1 = performance.now();
  for (const text of texts) {
    // the pipeline's own tokenizer call (truncation at model_max_length), then the model: the raw logits
    const enc = pipe.tokenizer(text, { padding: true, truncation: true });
    const out = await pipe.model(enc);
    results.push({ input_ids: ids(enc.input_ids), logits: Array.from(out.logits.data) });
  }
  meta.run_s = (performance.now() - t1) / 1000;
  const [top] = await pipe(texts[0] ?? '', { top_k: 1 }); // the pipeline's own answer, labels from config.json
  meta.pipeline_sample = top;
} else {
  // pipeline('feature-extraction') reads last_hidden_state / logits / token_embeddings only: this graph's output
  // is sentence_embedding (pooled and normalised inside), so AutoModel is called directly
  const tokenizer = await AutoTokenizer.from_pretrained(modelDir);
  const model = await AutoModel.from_pretrained(modelDir, { dtype, device: 'cpu' });
  meta.load_s = (performance.now() - t0) / 1000;
  meta.model_max_length = tokenizer.model_max_length;
  const t1 = performance.now();
  for (const text of texts) {
    const enc = tokenizer(text, { padding: true, truncation: true });
    const out = await model(enc);
    results.push({ input_ids: ids(enc.input_ids), sentence_embedding: Array.from(out.sentence_embedding.data) });
  }
  meta.run_s = (performance.now() - t1) / 1000;
}
fs.writeFileSync(argv[2], JSON.stringify({ meta, results }));
