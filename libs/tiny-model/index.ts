// A deterministic toy llama GGUF for tests and demos, and the rule that predicts its greedy output.
export { encodeGguf, gguf, type GgufFile, type GgufTensor, type GgufValue } from './gguf-writer.js';
export {
  TINY_CHAT_REPLY,
  TINY_DIMS,
  TINY_MODEL_NAME,
  chatMLPrompt,
  countTinyTokens,
  expectedGreedyContinuation,
  expectedGreedyOutput,
  nextTinyChar,
  tinyModelGguf,
  writeTinyModel,
  type TinyModelVariant,
} from './tiny-model.js';
