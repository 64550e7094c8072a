/*===- Compiler.h - The MoE-MLIR compiler C API -----------------*- C -*-===*\
|*                                                                          *|
|* What moe-compile does, as a library: make a program from moe IR text or  *|
|* a layer spec, run the pipelines, write an artifact that moert loads,     *|
|* and report the static memory plan. Every call that can fail returns 0 on *|
|* success and non-zero on failure; moe_compiler_last_error() then holds    *|
|* the messages the tools would print (one line each, "LOC: error: ...").   *|
|* No call throws or exits the host process on a bad input.                 *|
\*===----------------------------------------------------------------------===*/

#ifndef MOE_MLIR_C_COMPILER_H
#define MOE_MLIR_C_COMPILER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A verified moe program: an MLIR context and module, owned together. */
typedef struct moe_program moe_program;

/* The messages of the last failed call on this thread ("" if none). */
const char *moe_compiler_last_error(void);

/* Frees a string the API returned (NULL is fine). */
void moe_string_free(char *text);

/*===--- Programs ---===*/
/* Parses and verifies moe IR. `source_name` names the text in error
   locations ("<string>" when NULL). */
int moe_program_parse(const char *ir_text, const char *source_name,
                      moe_program **out);
/* The program of a layer spec ("tiny", "mixtral,tokens=64",
   "tokens=16,hidden=32,ffn=24,experts=4,top_k=2,..."): the function
   @moe_layer(x, w_gate, w1, w2[, bias]) -> (y, indices). */
int moe_program_from_layer_spec(const char *spec, moe_program **out);
void moe_program_free(moe_program *program);
/* The program's IR as text (free with moe_string_free). */
int moe_program_print(const moe_program *program, char **text);

/* The canonical text of a layer spec, every key in a fixed order (free with
   moe_string_free); a malformed spec is an error naming the key and rule. */
int moe_layer_spec_canonical(const char *spec, char **canonical);

/*===--- Compilation ---===*/
typedef struct moe_compile_options {
  /* "cpu" (NULL means cpu), "cuda" (sm_90), "cuda:sm_90", "cuda:sm_80". */
  const char *target;
  /* LLVM optimization level, 0 to 3 (default 3). */
  int opt_level;
  /* Zero-buffer dispatch fusion (default 1); 0: the materializing lowering. */
  int fusion;
  /* Experts whose GEMMs run back to back; 0 (default) is the target's own. */
  int64_t experts_per_chunk;
  /* CUDA: the tensor-core CTA tile "BMxBNxBKxSTAGES[xWMxWN]" (NULL: default). */
  const char *cuda_tile;
  /* CUDA: the toolkit with ptxas (NULL: $CUDA_HOME, else /usr/local/cuda). */
  const char *cuda_path;
  /* Compile the training step (moe-generate-backward): each function F
     becomes F_train(args, dy) -> (results, gradients, [aux], loads). */
  int backward;
  /* CUDA sm_90a: the GEMMs' thread block clusters, "auto", "1" or "2"
     (moe-compile --cuda-cluster; NULL: auto). */
  const char *cuda_cluster;
} moe_compile_options;

/* The defaults above (what moe-compile does without options). */
void moe_compile_options_init(moe_compile_options *options);

/* Compiles a copy of the program (the program itself is unchanged, so it
   can be compiled again) into the artifact `output_path`. When
   `memory_report` is not NULL it receives the static memory plan as JSON
   (the document moe-compile --report-memory writes; free with
   moe_string_free). */
int moe_program_compile(const moe_program *program,
                        const moe_compile_options *options,
                        const char *output_path, char **memory_report);

/* What to print instead of an artifact. */
typedef enum moe_emit_kind {
  MOE_EMIT_MLIR = 0, /* the LLVM-dialect module after the pipeline */
  MOE_EMIT_LLVM = 1, /* optimized LLVM IR */
  MOE_EMIT_PTX = 2,  /* the GPU kernels' PTX (CUDA targets) */
} moe_emit_kind;

/* Compiles a copy of the program and returns the text `kind` asks for
   (free with moe_string_free). */
int moe_program_emit(const moe_program *program,
                     const moe_compile_options *options, moe_emit_kind kind,
                     char **text);

/* The static memory plan as JSON without generating code (moe-compile
   --report-memory=PATH without -o). */
int moe_program_memory_report(const moe_program *program,
                              const moe_compile_options *options,
                              char **json);

#ifdef __cplusplus
}
#endif

#endif /* MOE_MLIR_C_COMPILER_H */
