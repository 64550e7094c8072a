//===- BlockSpecTest.cpp - Tests of block spec parsing and printing -------===//
//
// Part of the MoE-MLIR project.
//
//===----------------------------------------------------------------------===//

#include "lib/Layer/BlockSpec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace moe::layer;

namespace {

BlockSpec parseOk(const std::string &text) {
  BlockSpec spec;
  std::string error = "stale";
  EXPECT_TRUE(parseBlockSpec(text, spec, error)) << text << ": " << error;
  EXPECT_EQ(error, "") << "a successful parse clears the error";
  return spec;
}

void expectAttention(const BlockSpec &s, int64_t batch, int64_t seq,
                     int64_t heads, int64_t kvHeads, int64_t headDim,
                     int64_t btaTiles) {
  EXPECT_EQ(s.batch, batch);
  EXPECT_EQ(s.seq, seq);
  EXPECT_EQ(s.heads, heads);
  EXPECT_EQ(s.kvHeads, kvHeads);
  EXPECT_EQ(s.headDim, headDim);
  EXPECT_EQ(s.btaTiles, btaTiles);
  EXPECT_EQ(s.moe.tokens, batch * seq) << "the MoE has batch*seq tokens";
}

/// The presets' MoEs are the layer presets of the same model, token count
/// included, so they carry those presets' names.
TEST(BlockSpec, Presets) {
  BlockSpec qwen = parseOk("qwen3_block");
  expectAttention(qwen, 4, 4096, 32, 4, 128, 1);
  EXPECT_EQ(qwen.moe.hidden, 2048);
  EXPECT_EQ(qwen.moe.ffn, 768);
  EXPECT_EQ(qwen.moe.experts, 128);
  EXPECT_EQ(qwen.moe.topK, 8);
  EXPECT_EQ(qwen.moe.dtype, DType::BF16);
  EXPECT_EQ(qwen.moe.name, "qwen3_30b_a3b");
  EXPECT_EQ(qwen.name, "qwen3_block");

  BlockSpec tiny = parseOk("tiny_block");
  expectAttention(tiny, 2, 8, 4, 2, 8, 1);
  EXPECT_EQ(tiny.moe.hidden, 32);
  EXPECT_EQ(tiny.moe.ffn, 24);
  EXPECT_EQ(tiny.moe.experts, 4);
  EXPECT_EQ(tiny.moe.topK, 2);
  EXPECT_EQ(tiny.moe.dtype, DType::F32);
  EXPECT_EQ(tiny.moe.name, "tiny");
  EXPECT_EQ(tiny.name, "tiny_block");

  EXPECT_EQ(blockPresetNames(),
            (std::vector<std::string>{"qwen3_block", "tiny_block"}));
}

TEST(BlockSpec, PresetOverrides) {
  BlockSpec s = parseOk("qwen3_block,batch=8,bta_tiles=2");
  expectAttention(s, 8, 4096, 32, 4, 128, 2);
  EXPECT_EQ(s.name, "custom");
  // 8 * 4096 tokens is no longer the layer preset either.
  EXPECT_EQ(s.moe.name, "custom");

  // Layer keys override the MoE, with LayerSpec's meaning.
  BlockSpec t = parseOk("tiny_block, top_k = 1 ,capacity=1.5,router=sigmoid");
  EXPECT_EQ(t.moe.topK, 1);
  EXPECT_EQ(t.moe.capacity, 1.5);
  EXPECT_EQ(t.moe.router, Router::Sigmoid);
  expectAttention(t, 2, 8, 4, 2, 8, 1);

  // Overriding a key with its preset value keeps the preset.
  EXPECT_EQ(parseOk("tiny_block,bta_tiles=1,kv_heads=2").name, "tiny_block");
  // dtype is the layer's, and so the block's.
  EXPECT_EQ(parseOk("qwen3_block,dtype=f32").moe.dtype, DType::F32);
}

TEST(BlockSpec, BtaTilesGivenOrNot) {
  // Under a memory budget a given N is checked, an absent one chosen: the
  // spec tells them apart even when N is the default 1.
  EXPECT_FALSE(parseOk("tiny_block").btaTilesGiven);
  EXPECT_FALSE(parseOk("tiny_block,batch=4").btaTilesGiven);
  EXPECT_TRUE(parseOk("tiny_block,bta_tiles=1").btaTilesGiven);
  EXPECT_TRUE(parseOk("tiny_block,batch=4,bta_tiles=2").btaTilesGiven);
  // A given 1 is still the preset.
  EXPECT_EQ(parseOk("tiny_block,bta_tiles=1").name, "tiny_block");
}

TEST(BlockSpec, CustomWithoutPreset) {
  BlockSpec s = parseOk("batch=3,seq=5,heads=6,kv_heads=3,head_dim=4,"
                        "hidden=16,ffn=8,experts=4,top_k=2");
  expectAttention(s, 3, 5, 6, 3, 4, 1); // bta_tiles defaults to 1
  EXPECT_EQ(s.moe.hidden, 16);
  EXPECT_EQ(s.moe.tokens, 15);
  EXPECT_EQ(s.name, "custom");
  EXPECT_EQ(s.moe.dtype, DType::F32);

  // The tiny block's fields, given key by key, are the tiny block.
  EXPECT_EQ(parseOk("batch=2,seq=8,heads=4,kv_heads=2,head_dim=8,hidden=32,"
                    "ffn=24,experts=4,top_k=2")
                .name,
            "tiny_block");
}

TEST(BlockSpec, CanonicalFormat) {
  EXPECT_EQ(formatBlockSpec(parseOk("tiny_block")),
            "batch=2,seq=8,heads=4,kv_heads=2,head_dim=8,bta_tiles=1,"
            "hidden=32,ffn=24,experts=4,top_k=2,router=softmax,bias=0,"
            "capacity=0,normalize=1,scaling=1,activation=silu_glu,dtype=f32,"
            "dynamic=0,n_group=0,topk_group=0");
  EXPECT_EQ(formatBlockSpec(parseOk("qwen3_block,bta_tiles=4,aux_loss=0.01")),
            "batch=4,seq=4096,heads=32,kv_heads=4,head_dim=128,bta_tiles=4,"
            "hidden=2048,ffn=768,experts=128,top_k=8,router=softmax,bias=0,"
            "capacity=0,normalize=1,scaling=1,activation=silu_glu,"
            "dtype=bf16,dynamic=0,n_group=0,topk_group=0,aux_loss=0.01");
  // row_slices only where it is not 1: existing specs keep their text.
  EXPECT_NE(formatBlockSpec(parseOk("tiny_block,row_slices=4"))
                .find(",bta_tiles=1,row_slices=4,hidden=32,"),
            std::string::npos);
  EXPECT_EQ(parseOk("tiny_block,row_slices=4").rowSlices, 4);
  EXPECT_EQ(parseOk("tiny_block").rowSlices, 1);
}

TEST(BlockSpec, RoundTrip) {
  std::vector<std::string> specs = {
      "tiny_block",
      "qwen3_block",
      "qwen3_block,batch=8,bta_tiles=2",
      "tiny_block,seq=1,heads=8,kv_heads=1,head_dim=3",
      "tiny_block,capacity=0.1,scaling=0.3333333333333333,router=sigmoid,"
      "bias=1,normalize=0,activation=gelu_glu,n_group=2,topk_group=1",
      "qwen3_block,ep=4,overlap=2,dtype=f32",
      "qwen3_block,batch=2,bta_tiles=2,row_slices=4",
  };
  for (const std::string &text : specs) {
    BlockSpec first = parseOk(text);
    std::string canonical = formatBlockSpec(first);
    BlockSpec second = parseOk(canonical);
    EXPECT_EQ(formatBlockSpec(second), canonical) << text;
    EXPECT_EQ(second.name, first.name) << text;
    EXPECT_EQ(second.moe.name, first.moe.name) << text;
    EXPECT_EQ(formatLayerSpec(second.moe), formatLayerSpec(first.moe)) << text;
    expectAttention(second, first.batch, first.seq, first.heads, first.kvHeads,
                    first.headDim, first.btaTiles);
    EXPECT_EQ(second.rowSlices, first.rowSlices) << text;
  }
}

struct ErrorCase {
  const char *spec;
  std::vector<const char *> mustContain;
};

TEST(BlockSpec, Errors) {
  std::vector<ErrorCase> cases = {
      // Row slices: at most the T*k grouped rows they slice, at least 1.
      {"tiny_block,row_slices=33", {"row_slices=33", "32 grouped rows"}},
      {"tiny_block,row_slices=0", {"row_slices", ">= 1"}},
      // A block's token count is static.
      {"tiny_block,dynamic=1", {"dynamic=1", "batch*seq", "--layer"}},
      // The MoE's tokens are batch*seq.
      {"tiny_block,tokens=16", {"tokens", "batch*seq", "batch and seq"}},
      {"tokens=16,batch=2,seq=8", {"tokens", "batch*seq"}},
      // Unknown key, listing the block's and the layer's keys (not tokens).
      {"tiny_block,foo=1",
       {"'foo'", "valid keys", "kv_heads", "bta_tiles", "top_k", "topk_group"}},
      {"tiny_block,kv_head=1", {"'kv_head'", "valid keys"}},
      // Unknown preset, listing the block presets; layer presets are not.
      {"llama_block", {"'llama_block'", "qwen3_block", "tiny_block"}},
      {"qwen3_30b_a3b,batch=4", {"'qwen3_30b_a3b'", "not a block"}},
      // Duplicate keys, block or layer.
      {"tiny_block,batch=1,batch=2", {"'batch'", "duplicate"}},
      {"tiny_block,ffn=1,ffn=2", {"'ffn'", "duplicate"}},
      // Every block size is a positive integer.
      {"tiny_block,batch=0", {"batch=0", "positive"}},
      {"tiny_block,seq=-3", {"seq=-3", "positive"}},
      {"tiny_block,heads=0", {"heads=0", "positive"}},
      {"tiny_block,kv_heads=0", {"kv_heads=0", "positive"}},
      {"tiny_block,head_dim=0", {"head_dim=0", "positive"}},
      {"tiny_block,bta_tiles=0", {"bta_tiles=0", "positive"}},
      {"tiny_block,head_dim=2.5", {"head_dim", "not an integer"}},
      {"tiny_block,seq=", {"seq", "not an integer"}},
      {"tiny_block,batch=99999999999", {"batch", "out of range"}},
      // Grouped-query attention.
      {"tiny_block,kv_heads=3", {"heads=4", "kv_heads=3", "multiple"}},
      {"tiny_block,heads=2,kv_heads=4", {"heads=2", "kv_heads=4"}},
      // Batch tiling.
      {"tiny_block,bta_tiles=3",
       {"bta_tiles=3 does not divide batch=2: every tile has "
        "batch/bta_tiles sequences"}},
      {"qwen3_block,bta_tiles=8",
       {"bta_tiles=8 does not divide batch=4: every tile has "
        "batch/bta_tiles sequences"}},
      // Too many tokens or too large tensors.
      {"tiny_block,batch=65536,seq=65536", {"batch=65536", "seq=65536"}},
      {"tiny_block,heads=2147483647,kv_heads=1,head_dim=2147483647,"
       "hidden=2147483647",
       {"2^63 bytes"}},
      // Layer rules, with the MoE's tokens = batch*seq.
      {"tiny_block,top_k=5", {"top_k=5", "experts=4"}},
      {"tiny_block,ep=3", {"ep=3", "experts=4"}},
      {"tiny_block,overlap=3,ep=2", {"overlap=3", "tokens=16"}},
      {"tiny_block,dtype=f16", {"dtype", "bf16"}},
      // Empty spec and malformed items.
      {"", {"empty block spec", "tiny_block", "head_dim"}},
      {"tiny_block,", {"empty item", "block spec"}},
      {"tiny_block,qwen3_block", {"'qwen3_block'", "key=value"}},
      {"tiny_block,=3", {"no key"}},
      {"tiny_block,batch=1\n2", {"batch", "not an integer"}}, // one line
      // Missing required keys.
      {"batch=2,seq=8,hidden=32,ffn=24,experts=4,top_k=2",
       {"missing", "heads", "kv_heads", "head_dim"}},
      {"heads=4,kv_heads=2,head_dim=8,hidden=32,ffn=24,experts=4,top_k=2",
       {"missing", "batch", "seq"}},
  };
  for (const ErrorCase &c : cases) {
    BlockSpec spec;
    std::string error;
    EXPECT_FALSE(parseBlockSpec(c.spec, spec, error)) << c.spec;
    EXPECT_FALSE(error.empty()) << c.spec;
    EXPECT_EQ(error.find('\n'), std::string::npos)
        << "one line: " << c.spec << ": " << error;
    for (const char *needle : c.mustContain)
      EXPECT_NE(error.find(needle), std::string::npos)
          << "spec '" << c.spec << "' gave '" << error << "', expected it to "
          << "contain '" << needle << "'";
  }
}

TEST(BlockSpec, MissingKeysAreOnlyTheMissingOnes) {
  BlockSpec spec;
  std::string error;
  ASSERT_FALSE(parseBlockSpec(
      "batch=2,seq=8,heads=4,head_dim=8,hidden=32,experts=4,top_k=2", spec,
      error));
  std::string head = error.substr(0, error.find(':'));
  EXPECT_NE(head.find("kv_heads"), std::string::npos) << error;
  EXPECT_NE(head.find("ffn"), std::string::npos) << error;
  EXPECT_EQ(head.find("batch"), std::string::npos) << error;
  EXPECT_EQ(head.find("top_k"), std::string::npos) << error;
}

} // namespace
