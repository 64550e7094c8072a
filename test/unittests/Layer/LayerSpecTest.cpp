//===- LayerSpecTest.cpp - Tests of layer spec parsing and printing -------===//
//
// Part of the MoE-MLIR project.
//
//===----------------------------------------------------------------------===//

#include "lib/Layer/LayerSpec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace moe::layer;

namespace {

LayerSpec parseOk(const std::string &text) {
  LayerSpec spec;
  std::string error = "stale";
  EXPECT_TRUE(parseLayerSpec(text, spec, error)) << text << ": " << error;
  EXPECT_EQ(error, "") << "a successful parse clears the error";
  return spec;
}

void expectShape(const LayerSpec &s, int64_t t, int64_t h, int64_t f, int64_t e,
                 int64_t k) {
  EXPECT_EQ(s.tokens, t);
  EXPECT_EQ(s.hidden, h);
  EXPECT_EQ(s.ffn, f);
  EXPECT_EQ(s.experts, e);
  EXPECT_EQ(s.topK, k);
}

void expectDefaultOptions(const LayerSpec &s) {
  EXPECT_EQ(s.router, Router::Softmax);
  EXPECT_FALSE(s.bias);
  EXPECT_EQ(s.capacity, 0.0);
  EXPECT_TRUE(s.normalize);
  EXPECT_EQ(s.scaling, 1.0);
  EXPECT_EQ(s.activation, Activation::SiluGlu);
  EXPECT_FALSE(s.dynamicTokens);
  EXPECT_EQ(s.nGroup, 0);
  EXPECT_EQ(s.topkGroup, 0);
}

TEST(LayerSpec, Presets) {
  LayerSpec tiny = parseOk("tiny");
  expectShape(tiny, 16, 32, 24, 4, 2);
  expectDefaultOptions(tiny);
  EXPECT_EQ(tiny.dtype, DType::F32);
  EXPECT_EQ(tiny.name, "tiny");

  LayerSpec mixtral = parseOk("mixtral");
  expectShape(mixtral, 8192, 4096, 14336, 8, 2);
  expectDefaultOptions(mixtral);
  EXPECT_EQ(mixtral.dtype, DType::BF16);
  EXPECT_EQ(mixtral.name, "mixtral");

  LayerSpec qwen = parseOk("qwen3_30b_a3b");
  expectShape(qwen, 16384, 2048, 768, 128, 8);
  expectDefaultOptions(qwen);
  EXPECT_EQ(qwen.dtype, DType::BF16);
  EXPECT_EQ(qwen.name, "qwen3_30b_a3b");

  LayerSpec olmoe = parseOk("olmoe");
  expectShape(olmoe, 16384, 2048, 1024, 64, 8);
  expectDefaultOptions(olmoe);
  EXPECT_EQ(olmoe.dtype, DType::BF16);
  EXPECT_EQ(olmoe.name, "olmoe");

  EXPECT_EQ(
      layerPresetNames(),
      (std::vector<std::string>{"tiny", "mixtral", "qwen3_30b_a3b", "olmoe"}));
}

TEST(LayerSpec, PresetOverrides) {
  LayerSpec s = parseOk("mixtral,tokens=64");
  expectShape(s, 64, 4096, 14336, 8, 2);
  EXPECT_EQ(s.dtype, DType::BF16);
  EXPECT_EQ(s.name, "custom");

  LayerSpec t = parseOk("olmoe,dtype=f32,router=sigmoid,bias=1,capacity=1.25,"
                        "normalize=0,scaling=2.5,activation=gelu_glu,"
                        "dynamic=1,n_group=8,topk_group=4");
  expectShape(t, 16384, 2048, 1024, 64, 8);
  EXPECT_EQ(t.dtype, DType::F32);
  EXPECT_EQ(t.router, Router::Sigmoid);
  EXPECT_TRUE(t.bias);
  EXPECT_EQ(t.capacity, 1.25);
  EXPECT_FALSE(t.normalize);
  EXPECT_EQ(t.scaling, 2.5);
  EXPECT_EQ(t.activation, Activation::GeluGlu);
  EXPECT_TRUE(t.dynamicTokens);
  EXPECT_EQ(t.nGroup, 8);
  EXPECT_EQ(t.topkGroup, 4);

  // An override that changes nothing keeps the preset's name.
  EXPECT_EQ(parseOk("mixtral,tokens=8192").name, "mixtral");
  // Overriding a preset's key once is not a duplicate.
  EXPECT_EQ(parseOk("tiny,top_k=1").topK, 1);
}

TEST(LayerSpec, CustomAndWhitespace) {
  LayerSpec s = parseOk("tokens=5,hidden=6,ffn=7,experts=3,top_k=3");
  expectShape(s, 5, 6, 7, 3, 3);
  expectDefaultOptions(s);
  EXPECT_EQ(s.dtype, DType::F32);
  EXPECT_EQ(s.name, "custom");

  LayerSpec w = parseOk("  mixtral , tokens = 64 ,\tdtype=f32  ");
  expectShape(w, 64, 4096, 14336, 8, 2);
  EXPECT_EQ(w.dtype, DType::F32);

  // Keys in any order; equal to the preset means named after it.
  EXPECT_EQ(parseOk("top_k=2,experts=4,ffn=24,hidden=32,tokens=16").name,
            "tiny");
}

TEST(LayerSpec, CanonicalFormat) {
  EXPECT_EQ(formatLayerSpec(parseOk("tiny")),
            "tokens=16,hidden=32,ffn=24,experts=4,top_k=2,router=softmax,"
            "bias=0,capacity=0,normalize=1,scaling=1,activation=silu_glu,"
            "dtype=f32,dynamic=0,n_group=0,topk_group=0");
  EXPECT_EQ(formatLayerSpec(parseOk("qwen3_30b_a3b,capacity=1.25,scaling=2.5,"
                                    "router=sigmoid,bias=1,normalize=0,"
                                    "activation=gelu_glu,dynamic=1,"
                                    "n_group=8,topk_group=4")),
            "tokens=16384,hidden=2048,ffn=768,experts=128,top_k=8,"
            "router=sigmoid,bias=1,capacity=1.25,normalize=0,scaling=2.5,"
            "activation=gelu_glu,dtype=bf16,dynamic=1,n_group=8,"
            "topk_group=4");
}

TEST(LayerSpec, RoundTrip) {
  std::vector<std::string> specs = {
      "tiny",
      "mixtral",
      "qwen3_30b_a3b",
      "olmoe",
      "mixtral,tokens=64",
      "tiny,capacity=0.1,scaling=0.3333333333333333",
      "tiny,capacity=1e-7,scaling=123456.789",
      "olmoe,router=sigmoid,bias=1,normalize=0,activation=gelu_glu,"
      "dynamic=1,n_group=8,topk_group=3,dtype=f32",
      "tiny,aux_loss=0.001",
  };
  for (const std::string &text : specs) {
    LayerSpec first = parseOk(text);
    std::string canonical = formatLayerSpec(first);
    LayerSpec second = parseOk(canonical);
    EXPECT_EQ(formatLayerSpec(second), canonical) << text;
    EXPECT_EQ(second.name, first.name) << text;
    EXPECT_EQ(second.capacity, first.capacity) << text;
    EXPECT_EQ(second.scaling, first.scaling) << text;
    EXPECT_EQ(second.auxLoss, first.auxLoss) << text;
  }
}

/// The aux loss is printed only when on, so every forward spec keeps its
/// canonical text (and a preset with aux_loss is no longer that preset).
TEST(LayerSpec, AuxLoss) {
  EXPECT_EQ(parseOk("tiny").auxLoss, 0.0);
  LayerSpec spec = parseOk("tiny,aux_loss=0.01");
  EXPECT_EQ(spec.auxLoss, 0.01);
  EXPECT_EQ(spec.name, "custom");
  EXPECT_EQ(formatLayerSpec(spec),
            "tokens=16,hidden=32,ffn=24,experts=4,top_k=2,router=softmax,"
            "bias=0,capacity=0,normalize=1,scaling=1,activation=silu_glu,"
            "dtype=f32,dynamic=0,n_group=0,topk_group=0,aux_loss=0.01");
  EXPECT_EQ(parseOk("tiny,aux_loss=0").name, "tiny");
}

TEST(LayerSpec, ForwardFlops) {
  EXPECT_DOUBLE_EQ(forwardFlops(parseOk("tiny")), 2.0 * 16 * 2 * 32 * 3 * 24);
  EXPECT_DOUBLE_EQ(forwardFlops(parseOk("mixtral")),
                   2.0 * 8192 * 2 * 4096 * 3 * 14336);
  // 2*T*k*H*3F for qwen3 is 1.2369e12 (the baselines' 38.6 TFLOP/s at 32 ms).
  EXPECT_DOUBLE_EQ(forwardFlops(parseOk("qwen3_30b_a3b")),
                   2.0 * 16384 * 8 * 2048 * 3 * 768);
}

struct ErrorCase {
  const char *spec;
  std::vector<const char *> mustContain;
};

TEST(LayerSpec, Errors) {
  std::vector<ErrorCase> cases = {
      // Unknown key, listing the valid keys.
      {"tiny,foo=1", {"'foo'", "valid keys", "top_k", "topk_group"}},
      {"tokens=1,hidden=1,ffn=1,experts=1,top_k=1,topk=1", {"'topk'"}},
      // Unknown preset, listing the presets.
      {"llama", {"'llama'", "presets", "tiny", "qwen3_30b_a3b", "olmoe"}},
      // Duplicate key.
      {"tiny,tokens=1,tokens=2", {"'tokens'", "duplicate"}},
      {"tokens=1,hidden=1,ffn=1,experts=1,top_k=1,top_k=1", {"'top_k'"}},
      // Non-integer values.
      {"tiny,tokens=abc", {"tokens", "not an integer"}},
      {"tiny,top_k=2.0", {"top_k", "not an integer"}},
      {"tiny,hidden=", {"hidden", "not an integer"}},
      {"tiny,tokens=1\n2", {"tokens", "not an integer"}}, // still one line
      {"tiny,n_group=x,topk_group=1", {"n_group", "not an integer"}},
      // Out of range.
      {"tiny,tokens=99999999999999999999", {"tokens", "out of range"}},
      {"tiny,hidden=2147483648", {"hidden", "out of range"}},
      // Zero or negative sizes.
      {"tiny,ffn=0", {"ffn=0", "positive"}},
      {"tiny,experts=-4", {"experts=-4", "positive"}},
      {"tiny,tokens=0", {"tokens=0", "positive"}},
      {"tiny,n_group=-1,topk_group=1", {"n_group=-1", ">= 0"}},
      // top_k rules.
      {"tiny,top_k=5", {"top_k=5", "experts=4"}},
      {"tiny,top_k=0", {"top_k=0", ">= 1"}},
      // Capacity and scaling.
      {"tiny,capacity=-1", {"capacity=-1", ">= 0"}},
      {"tiny,capacity=abc", {"capacity", "not a finite number"}},
      {"tiny,capacity=inf", {"capacity", "not a finite number"}},
      {"tiny,scaling=0", {"scaling=0", "> 0"}},
      {"tiny,scaling=-2", {"scaling=-2", "> 0"}},
      {"tiny,scaling=nan", {"scaling", "not a finite number"}},
      {"tiny,aux_loss=-0.5", {"aux_loss=-0.5", ">= 0"}},
      {"tiny,aux_loss=inf", {"aux_loss", "not a finite number"}},
      // Group-limited routing.
      {"tiny,n_group=3,topk_group=1", {"n_group=3", "divide", "experts=4"}},
      {"tiny,n_group=2,topk_group=3", {"topk_group=3", "n_group=2"}},
      {"tiny,n_group=2", {"topk_group", "n_group=2"}},
      {"tiny,topk_group=1", {"n_group", "topk_group=1"}},
      {"tiny,n_group=4,topk_group=1",
       {"top_k=2", "topk_group*experts/n_group"}},
      // Enums and booleans.
      {"tiny,router=relu", {"router", "softmax or sigmoid", "'relu'"}},
      {"tiny,activation=relu", {"activation", "silu_glu"}},
      {"tiny,dtype=f16", {"dtype", "bf16"}},
      {"tiny,bias=2", {"bias", "0 or 1"}},
      {"tiny,normalize=true", {"normalize", "0 or 1"}},
      {"tiny,dynamic=yes", {"dynamic", "0 or 1"}},
      // Empty spec and malformed items.
      {"", {"empty layer spec", "tiny", "tokens"}},
      {"   ", {"empty layer spec"}},
      {"tiny,", {"empty item"}},
      {"tiny,,tokens=2", {"empty item"}},
      {"tiny,mixtral", {"'mixtral'", "key=value"}},
      {"tiny,=3", {"no key"}},
      // Missing required keys.
      {"tokens=1,hidden=2", {"missing", "ffn", "experts", "top_k"}},
      {"tokens=1,hidden=2,ffn=3,experts=4", {"missing", "top_k"}},
  };
  for (const ErrorCase &c : cases) {
    LayerSpec spec;
    std::string error;
    EXPECT_FALSE(parseLayerSpec(c.spec, spec, error)) << c.spec;
    EXPECT_FALSE(error.empty()) << c.spec;
    EXPECT_EQ(error.find('\n'), std::string::npos)
        << "one line: " << c.spec << ": " << error;
    for (const char *needle : c.mustContain)
      EXPECT_NE(error.find(needle), std::string::npos)
          << "spec '" << c.spec << "' gave '" << error << "', expected it to "
          << "contain '" << needle << "'";
  }
}

TEST(LayerSpec, MissingKeysAreOnlyTheMissingOnes) {
  LayerSpec spec;
  std::string error;
  ASSERT_FALSE(parseLayerSpec("tokens=1,hidden=2,top_k=1", spec, error));
  // The list names ffn and experts; the rule text repeats all five keys, so
  // look at the part before the ':'.
  std::string head = error.substr(0, error.find(':'));
  EXPECT_NE(head.find("ffn"), std::string::npos) << error;
  EXPECT_NE(head.find("experts"), std::string::npos) << error;
  EXPECT_EQ(head.find("tokens"), std::string::npos) << error;
  EXPECT_EQ(head.find("top_k"), std::string::npos) << error;
}

} // namespace
