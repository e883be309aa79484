// HF tokenizer.json -> the tokenizer.ggml.* GGUF keys llama.cpp's convert_hf_to_gguf.py writes.
#pragma once
#include <string>
#include "runtime/model/metadata.h"

namespace hexe {

// Reads tokenizer.json (+ tokenizer_config.json, may be empty) with the runtime's own loader and
// adds tokenizer.ggml.{model, pre, tokens, token_type, merges | scores, *_token_id,
// add_bos_token, add_eos_token} and tokenizer.chat_template to `md`. Byte-level BPE becomes
// model "gpt2" with pre named after llama.cpp's regex set it matches (qwen2, llama3, gpt-2, ...);
// SentencePiece-style BPE becomes model "llama", pre "default", score = -id for normal pieces.
// Throws hexe::Error naming the file when the pre-tokenizer matches no name llama.cpp knows.
void add_vocab_metadata(const std::string& tokenizer_json, const std::string& config_json,
                        Metadata& md);

}  // namespace hexe
