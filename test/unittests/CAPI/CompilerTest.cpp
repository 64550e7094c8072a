//===- CompilerTest.cpp - The compiler's C API ----------------------------===//

#include "moe-mlir-c/Compiler.h"
#include "moe-mlir/Runtime/moert.h"

#include "gtest/gtest.h"

#include <cstdio>
#include <memory>
#include <string>
#include <unistd.h>

namespace {

struct ProgramDeleter {
  void operator()(moe_program *program) const { moe_program_free(program); }
};
using Program = std::unique_ptr<moe_program, ProgramDeleter>;

struct StringDeleter {
  void operator()(char *text) const { moe_string_free(text); }
};
using String = std::unique_ptr<char, StringDeleter>;

std::string error() { return moe_compiler_last_error(); }

/// A fresh path for an artifact, removed at the end of the test.
class ArtifactPath {
public:
  ArtifactPath() {
    char name[] = "/tmp/moe-capi-test-XXXXXX";
    int fd = mkstemp(name);
    if (fd >= 0)
      close(fd);
    path = name;
  }
  ~ArtifactPath() { std::remove(path.c_str()); }
  std::string path;
};

constexpr const char *kTinySpec =
    "tokens=8,hidden=16,ffn=8,experts=4,top_k=2,dtype=f32";

Program fromSpec(const char *spec) {
  moe_program *program = nullptr;
  EXPECT_EQ(moe_program_from_layer_spec(spec, &program), 0) << error();
  return Program(program);
}

TEST(CompilerCAPI, LayerSpecProgramPrintsTheLayer) {
  Program program = fromSpec(kTinySpec);
  ASSERT_TRUE(program);
  char *text = nullptr;
  ASSERT_EQ(moe_program_print(program.get(), &text), 0) << error();
  String owned(text);
  std::string ir = text;
  EXPECT_NE(ir.find("func.func @moe_layer"), std::string::npos) << ir;
  EXPECT_NE(ir.find("moe.gate"), std::string::npos) << ir;
}

TEST(CompilerCAPI, ParsesIrTextAndReportsErrorsWithLocations) {
  Program layer = fromSpec(kTinySpec);
  char *text = nullptr;
  ASSERT_EQ(moe_program_print(layer.get(), &text), 0) << error();
  String owned(text);
  moe_program *program = nullptr;
  EXPECT_EQ(moe_program_parse(text, "layer.mlir", &program), 0) << error();
  Program parsed(program);
  EXPECT_TRUE(parsed);

  // Not IR at all: the parser's message with the buffer name and position.
  moe_program *bad = nullptr;
  EXPECT_NE(moe_program_parse("func.func @f(", "bad.mlir", &bad), 0);
  EXPECT_EQ(bad, nullptr);
  EXPECT_NE(error().find("bad.mlir:1:"), std::string::npos) << error();
  EXPECT_NE(error().find("error:"), std::string::npos) << error();

  // Valid syntax that does not verify: the verifier's rule.
  std::string wrongTopK = text;
  size_t at = wrongTopK.find("top_k = 2");
  ASSERT_NE(at, std::string::npos) << wrongTopK;
  wrongTopK.replace(at, 9, "top_k = 9");
  EXPECT_NE(moe_program_parse(wrongTopK.c_str(), "k.mlir", &bad), 0);
  EXPECT_NE(error().find("top_k"), std::string::npos) << error();
}

TEST(CompilerCAPI, BadSpecsNameTheKey) {
  moe_program *program = nullptr;
  EXPECT_NE(moe_program_from_layer_spec("tiny,experts=0", &program), 0);
  EXPECT_EQ(program, nullptr);
  EXPECT_NE(error().find("experts"), std::string::npos) << error();
  EXPECT_NE(moe_program_from_layer_spec("no_such_preset", &program), 0);
  EXPECT_NE(error().find("no_such_preset"), std::string::npos) << error();

  char *canonical = nullptr;
  EXPECT_NE(moe_layer_spec_canonical("tiny,top_k=x", &canonical), 0);
  EXPECT_NE(error().find("top_k"), std::string::npos) << error();
  ASSERT_EQ(moe_layer_spec_canonical("tiny,router=sigmoid", &canonical), 0)
      << error();
  String owned(canonical);
  EXPECT_NE(std::string(canonical).find("router=sigmoid"), std::string::npos);
  EXPECT_NE(std::string(canonical).find("experts=4"), std::string::npos);
}

TEST(CompilerCAPI, CompilesAnArtifactThatMoertLoadsTwice) {
  Program program = fromSpec(kTinySpec);
  ASSERT_TRUE(program);
  moe_compile_options options;
  moe_compile_options_init(&options);
  options.opt_level = 1;
  // Twice from the same program: compiling must not consume it.
  for (int round = 0; round < 2; ++round) {
    ArtifactPath path;
    char *report = nullptr;
    ASSERT_EQ(moe_program_compile(program.get(), &options, path.path.c_str(),
                                  &report),
              0)
        << error();
    String ownedReport(report);
    EXPECT_NE(std::string(report).find("peak_intermediate_bytes"),
              std::string::npos)
        << report;

    moert_artifact *artifact = nullptr;
    ASSERT_EQ(moert_artifact_load(path.path.c_str(), &artifact), 0)
        << moert_last_error();
    const moert_function *function =
        moert_artifact_lookup(artifact, "moe_layer");
    ASSERT_NE(function, nullptr) << moert_last_error();
    EXPECT_EQ(moert_function_num_args(function), 4);
    EXPECT_EQ(moert_function_num_results(function), 2);
    moert_artifact_unload(artifact);
  }
}

TEST(CompilerCAPI, CompilesTheTrainingStep) {
  Program program = fromSpec(
      "tokens=8,hidden=16,ffn=8,experts=4,top_k=2,dtype=f32,aux_loss=0.01");
  ASSERT_TRUE(program);
  moe_compile_options options;
  moe_compile_options_init(&options);
  options.opt_level = 1;
  options.backward = 1;
  ArtifactPath path;
  ASSERT_EQ(moe_program_compile(program.get(), &options, path.path.c_str(),
                                nullptr),
            0)
      << error();
  moert_artifact *artifact = nullptr;
  ASSERT_EQ(moert_artifact_load(path.path.c_str(), &artifact), 0)
      << moert_last_error();
  const moert_function *train =
      moert_artifact_lookup(artifact, "moe_layer_train");
  ASSERT_NE(train, nullptr) << moert_last_error();
  // x, w_gate, w1, w2, dy -> y, indices, dx, dw_gate, dw1, dw2, aux, loads.
  EXPECT_EQ(moert_function_num_args(train), 5);
  EXPECT_EQ(moert_function_num_results(train), 8);
  moert_artifact_unload(artifact);

  // A function with no layer has nothing to differentiate: the pass's
  // message, not a crash.
  moe_program *plain = nullptr;
  ASSERT_EQ(moe_program_parse("func.func @f(%x: tensor<4xf32>) -> "
                              "tensor<4xf32> {\n  return %x : tensor<4xf32>\n}",
                              "plain.mlir", &plain),
            0)
      << error();
  Program owned(plain);
  EXPECT_NE(moe_program_compile(plain, &options, path.path.c_str(), nullptr),
            0);
  EXPECT_NE(error().find("error:"), std::string::npos) << error();
}

TEST(CompilerCAPI, EmitsTextAndTheMemoryPlan) {
  Program program = fromSpec(kTinySpec);
  ASSERT_TRUE(program);
  char *text = nullptr;
  ASSERT_EQ(moe_program_emit(program.get(), nullptr, MOE_EMIT_MLIR, &text), 0)
      << error();
  String mlir(text);
  EXPECT_NE(std::string(text).find("llvm.func"), std::string::npos);

  char *json = nullptr;
  ASSERT_EQ(moe_program_memory_report(program.get(), nullptr, &json), 0)
      << error();
  String report(json);
  EXPECT_NE(std::string(json).find("\"by_category\""), std::string::npos)
      << json;

  // The fused plan is smaller than the materializing one for the same layer.
  moe_compile_options unfused;
  moe_compile_options_init(&unfused);
  unfused.fusion = 0;
  char *unfusedJson = nullptr;
  ASSERT_EQ(moe_program_memory_report(program.get(), &unfused, &unfusedJson),
            0)
      << error();
  String unfusedReport(unfusedJson);
  auto peak = [](const char *doc) {
    std::string s = doc;
    size_t at = s.find("\"peak_intermediate_bytes\":");
    return at == std::string::npos
               ? -1LL
               : std::stoll(s.substr(at + 26));
  };
  EXPECT_GT(peak(json), 0);
  EXPECT_LT(peak(json), peak(unfusedJson));
}

TEST(CompilerCAPI, BadOptionsAreErrorsNotCrashes) {
  Program program = fromSpec(kTinySpec);
  ASSERT_TRUE(program);
  ArtifactPath path;
  moe_compile_options options;

  moe_compile_options_init(&options);
  options.target = "tpu";
  EXPECT_NE(moe_program_compile(program.get(), &options, path.path.c_str(),
                                nullptr),
            0);
  EXPECT_NE(error().find("tpu"), std::string::npos) << error();

  moe_compile_options_init(&options);
  options.opt_level = 7;
  EXPECT_NE(moe_program_compile(program.get(), &options, path.path.c_str(),
                                nullptr),
            0);
  EXPECT_NE(error().find("-O7"), std::string::npos) << error();

  moe_compile_options_init(&options);
  options.cuda_tile = "128x128x32x4";
  EXPECT_NE(moe_program_compile(program.get(), &options, path.path.c_str(),
                                nullptr),
            0);
  EXPECT_NE(error().find("CUDA target"), std::string::npos) << error();

  moe_compile_options_init(&options);
  options.cuda_cluster = "2";
  EXPECT_NE(
      moe_program_compile(program.get(), &options, path.path.c_str(), nullptr),
      0);
  EXPECT_NE(error().find("cuda_cluster needs a CUDA target"), std::string::npos)
      << error();

  moe_compile_options_init(&options);
  options.target = "cuda:sm_90a";
  options.cuda_cluster = "4";
  EXPECT_NE(
      moe_program_compile(program.get(), &options, path.path.c_str(), nullptr),
      0);
  EXPECT_NE(error().find("cuda_cluster: '4' is not auto, 1 or 2"),
            std::string::npos)
      << error();

  moe_compile_options_init(&options);
  EXPECT_NE(moe_program_emit(program.get(), &options, MOE_EMIT_PTX, nullptr),
            0);
  char *text = nullptr;
  EXPECT_NE(moe_program_emit(program.get(), &options, MOE_EMIT_PTX, &text), 0);
  EXPECT_NE(error().find("CUDA"), std::string::npos) << error();

  EXPECT_NE(moe_program_compile(program.get(), &options, "", nullptr), 0);
  EXPECT_NE(error().find("output path"), std::string::npos) << error();
  EXPECT_NE(moe_program_compile(program.get(), &options,
                                "/nonexistent-dir/x.so", nullptr),
            0);
  EXPECT_NE(error().find("nonexistent-dir"), std::string::npos) << error();

  EXPECT_NE(moe_program_compile(nullptr, &options, path.path.c_str(), nullptr),
            0);
  EXPECT_NE(error().find("NULL"), std::string::npos) << error();
}

} // namespace
