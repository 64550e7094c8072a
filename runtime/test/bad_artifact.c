/*===- bad_artifact.c - Malformed artifacts for the moert tests ----------===*\
|*                                                                          *|
|* Built once per BAD_CASE; each breaks the metadata in one way. The test   *|
|* expects the error that ArtifactTest.cpp lists for the case.              *|
\*===----------------------------------------------------------------------===*/

#include <stdlib.h>

#define HEAD "moe-artifact 1\ntarget cpu\n"

const char moe_artifact_metadata[] =
#if BAD_CASE == 1 /* An unknown record on line 5. */
    HEAD "function f 1 0\narg 0 f32 1 4\nbogus 1\nend\n";
#elif BAD_CASE == 2 /* Line 3 opens a function that never ends. */
    HEAD "function f 1 0\narg 0 f32 1 4\n";
#elif BAD_CASE == 3 /* A future format version. */
    "moe-artifact 2\ntarget cpu\n";
#elif BAD_CASE == 4 /* Rank 2 with one dimension, line 5. */
    HEAD "\nfunction f 1 0\narg 0 f32 2 4\nend\n";
#elif BAD_CASE == 5 /* An unknown dtype, line 4. */
    HEAD "function f 1 0\narg 0 f64 1 4\nend\n";
#elif BAD_CASE == 6 /* A function whose entry point is missing. */
    HEAD "function g 0 0\nend\n";
#elif BAD_CASE == 7 /* Two spaces, line 4. */
    HEAD "function f 1 0\narg 0 f32 1  4\nend\n";
#elif BAD_CASE == 8 /* Fewer args than declared, found at 'end' on line 5. */
    HEAD "function f 2 0\narg 0 f32 1 4\nend\n";
#else
#error "unknown BAD_CASE"
#endif

void moe_artifact_free(void *pointer) { free(pointer); }

void moe_entry_f(void **args, void *results) {
  (void)args;
  (void)results;
}
