/*===- moert.h - The MoE-MLIR runtime C API ---------------------*- C -*-===*\
|*                                                                          *|
|* moert loads artifacts made by moe-compile and runs their functions on    *|
|* tensors. It never links MLIR or LLVM. Every call that can fail returns   *|
|* 0 on success and non-zero on failure; moert_last_error() then says what  *|
|* failed and why. No call aborts the host process.                         *|
\*===----------------------------------------------------------------------===*/

#ifndef MOE_MLIR_RUNTIME_MOERT_H
#define MOE_MLIR_RUNTIME_MOERT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MOERT_MAX_RANK 8
/* A dimension that is only known at run time. */
#define MOERT_DYNAMIC (-1)

typedef enum moert_dtype {
  MOERT_F32 = 0,
  MOERT_BF16 = 1,
  MOERT_F16 = 2,
  MOERT_I32 = 3,
  MOERT_I64 = 4,
} moert_dtype;

typedef struct moert_artifact moert_artifact;
typedef struct moert_function moert_function;
typedef struct moert_tensor moert_tensor;

/* The message of the last failed call on this thread ("" if none). */
const char *moert_last_error(void);

/*===--- Data types ---===*/
size_t moert_dtype_size(moert_dtype dtype);
const char *moert_dtype_name(moert_dtype dtype);
/* Parses "f32", "bf16", "f16", "i32", "i64". */
int moert_dtype_parse(const char *name, moert_dtype *out);
float moert_bf16_to_f32(uint16_t bits);
/* Rounds to nearest even; NaN stays NaN. */
uint16_t moert_f32_to_bf16(float value);
float moert_f16_to_f32(uint16_t bits);
uint16_t moert_f32_to_f16(float value);

/*===--- Tensors: dense, row-major, 64-byte aligned ---===*/
/* Zero-initialized. dims must be non-negative. NULL (and an error) on failure. */
moert_tensor *moert_tensor_create(moert_dtype dtype, int rank, const int64_t *dims);
/* A tensor over memory the caller owns, without a copy (the Python
   bindings pass NumPy arrays and DLPack tensors this way): `data` holds the
   elements row-major and contiguous, aligned to the dtype's size, and must
   outlive the tensor. moert_tensor_free frees the tensor, never `data`.
   NULL (and an error) on a bad dtype, rank, dimension or address. A
   function call reads arguments and never writes them. */
moert_tensor *moert_tensor_wrap(moert_dtype dtype, int rank,
                                const int64_t *dims, void *data);
void moert_tensor_free(moert_tensor *tensor);
moert_dtype moert_tensor_dtype(const moert_tensor *tensor);
int moert_tensor_rank(const moert_tensor *tensor);
const int64_t *moert_tensor_dims(const moert_tensor *tensor);
int64_t moert_tensor_num_elements(const moert_tensor *tensor);
void *moert_tensor_data(moert_tensor *tensor);

/* NumPy .npy (v1.0 written; v1.0-3.0 read), little endian, C order. A bf16
   tensor is written as float32 and read from float32 (rounded to nearest
   even). Loading checks that the file's dtype fits `expected`. */
int moert_tensor_load_npy(const char *path, moert_dtype expected,
                          moert_tensor **out);
int moert_tensor_save_npy(const moert_tensor *tensor, const char *path);

/*===--- Artifacts and functions ---===*/
/* Where an artifact's functions run. */
typedef enum moert_backend {
  MOERT_BACKEND_CPU = 0,  /* metadata `target cpu` */
  MOERT_BACKEND_CUDA = 1, /* metadata `target cuda:sm_XY` */
} moert_backend;

/* Loading a CUDA artifact (`target cuda:sm_XY`) needs the NVIDIA driver
   (libcuda.so.1, found at run time; moert itself needs no CUDA) and a GPU
   that runs sm_XY code: compute capability X.Y or a newer one of the same
   major version X (X.Y exactly for an `sm_XYa` target). Otherwise loading
   fails and says why. The artifact's host code calls the mgpu* functions
   that libmoert.so exports; moert makes them visible to it even when
   libmoert.so itself was opened with RTLD_LOCAL. */
int moert_artifact_load(const char *path, moert_artifact **out);
void moert_artifact_unload(moert_artifact *artifact);
const char *moert_artifact_target(const moert_artifact *artifact);
/* MOERT_BACKEND_CUDA for a `cuda:` target, else (NULL too) MOERT_BACKEND_CPU. */
moert_backend moert_artifact_backend(const moert_artifact *artifact);
int moert_artifact_num_functions(const moert_artifact *artifact);
const moert_function *moert_artifact_function(const moert_artifact *artifact,
                                              int index);
/* NULL (and an error naming the functions there are) if absent. */
const moert_function *moert_artifact_lookup(const moert_artifact *artifact,
                                            const char *name);

const char *moert_function_name(const moert_function *function);
int moert_function_num_args(const moert_function *function);
int moert_function_num_results(const moert_function *function);
/* dims receives MOERT_DYNAMIC for dynamic dimensions. */
int moert_function_arg_spec(const moert_function *function, int index,
                            moert_dtype *dtype, int *rank, int64_t *dims);
int moert_function_result_spec(const moert_function *function, int index,
                               moert_dtype *dtype, int *rank, int64_t *dims);
/* The value of metadata `attr KEY VALUE`, or NULL if absent (not an error). */
const char *moert_function_attr(const moert_function *function,
                                const char *key);

/* Runs the function. Checks the argument count, each argument's dtype,
   rank and static dimensions (errors name the argument and the rule). On
   success results[0..num_results) receive new tensors owned by the caller. */
/* A CUDA function takes and returns host tensors like a CPU one: the call
   copies each argument to a fresh device buffer, runs the function, waits
   for the device (cuCtxSynchronize), copies each result back and frees all
   device memory of the call. A failure on the device is an error that
   starts "function 'NAME': a kernel failed: " and says which driver or
   mgpu* call failed first. Calls of CUDA functions are serialized
   process-wide. */
int moert_function_call(const moert_function *function,
                        moert_tensor *const *args, int num_args,
                        moert_tensor **results, int num_results);

/* A dense row-major tensor in device memory that the caller owns. */
typedef struct moert_device_tensor {
  moert_dtype dtype;
  int rank;
  int64_t dims[MOERT_MAX_RANK];
  void *data; /* a CUdeviceptr of the current device; never NULL */
} moert_device_tensor;

/* Runs a CUDA function on device memory the caller owns, with no copy to or
   from the host (what frameworks such as PyTorch need: their tensors stay
   where they are). Each argument's pointer goes straight to the function;
   each result is copied on the device into results[r], which the caller
   allocated with the result's dtype and shape (static dimensions from
   moert_function_result_spec, dynamic ones known to the caller, e.g. the
   token count). The function's work runs on `stream` (a CUstream of the
   current context; NULL is the legacy default stream), so it is ordered
   after what the caller queued there; the call returns once the device is
   done. The arguments and results are checked as moert_function_call
   checks its arguments (count, dtype, rank, static dimensions; NULL data);
   a CPU function is an error. */
int moert_function_call_device(const moert_function *function,
                               const moert_device_tensor *args, int num_args,
                               const moert_device_tensor *results,
                               int num_results, void *stream);

/* A result of moert_function_call_device_owned: the function's own device
   buffer (dtype, shape, data: its first element) and the handle that gives
   it back. */
typedef struct moert_device_result {
  moert_device_tensor tensor;
  void *owner; /* for moert_device_result_release, once */
} moert_device_result;

/* As moert_function_call_device, but the results are not copied: each
   results[r] receives the buffer the function itself allocated for result
   r (no device copy; what a framework wraps as its tensor, e.g. through
   DLPack). The caller releases each result's owner once, when done with
   it, with moert_device_result_release; the memory then goes back to
   moert's pool of device blocks, reused only after moert next waits for the
   device, so releasing it while work queued on the caller's streams still
   reads it is safe. A result the call does not own (an argument returned
   as it is) is copied into a block of its own. Unlike
   moert_function_call_device, the call returns once the work is queued on
   `stream` (no wait for the device): the results are ready for work queued
   behind it there (other streams must wait for it, as with any stream-
   ordered memory), the memory the function freed is reused only after that
   work, and a kernel that fails on the device shows as an error at the
   caller's next synchronization (MOERT_WAIT_FOR_DEVICE=1 in the
   environment makes the call wait for the device and report it). */
int moert_function_call_device_owned(const moert_function *function,
                                     const moert_device_tensor *args,
                                     int num_args,
                                     moert_device_result *results,
                                     int num_results, void *stream);
void moert_device_result_release(void *owner);

/* Runs the function `warmup` + `repeat` times on the same arguments (for a
   CUDA function copied to the device once) and stores the milliseconds of
   each of the last `repeat` runs in times_ms[0..repeat). A CUDA run is timed
   with CUDA events recorded on the legacy default stream just before and
   after the function (its streams are blocking, so this spans its device
   work); a CPU run with a steady clock. The results of each run are freed
   at once (never copied back); their shapes are not checked. Needs
   warmup >= 0 and repeat >= 1. */
int moert_function_time(const moert_function *function,
                        moert_tensor *const *args, int num_args, int warmup,
                        int repeat, double *times_ms);

/* One kernel of a profile: its name in the artifact's GPU code, its
   launches per run and its GPU time per run (CUDA events around each
   launch). */
typedef struct moert_kernel_time {
  char name[128]; /* NUL-terminated; longer names are cut */
  double launches_per_run;
  double ms_per_run;
} moert_kernel_time;

/* Profiles a CUDA function: runs it once as a warm-up, then `repeat` times
   with CUDA events recorded around each of its kernel launches, on the same
   arguments as moert_function_time. *count receives the number of distinct
   kernels, and entries[0..min(*count, capacity)) the kernels by decreasing
   time. The events add a little time per launch: time the function with
   moert_function_time. A CPU function is an error. */
int moert_function_profile(const moert_function *function,
                           moert_tensor *const *args, int num_args, int repeat,
                           moert_kernel_time *entries, int capacity,
                           int *count);

/* While enabled (default: off), every buffer an artifact allocates, on the
   host or the device, starts filled with 0xFF bytes: NaN in f32, bf16 and
   f16, -1 in integers. A result element (or an intermediate) that no kernel
   writes then shows as NaN instead of a leftover value; moe-run turns it on
   for the run whose results it reports and checks, off for timing. */
void moert_set_poison_allocations(int enabled);

/*===--- Communicators and collectives (expert parallelism) ---===*/
/* The collectives ABI is versioned on its own: the entry points compiled
   code calls carry the version in their names (moert_*_v1), so an artifact
   built against one version is refused by the loader of a runtime without
   it instead of calling a changed signature. */
#define MOERT_COLLECTIVES_ABI_VERSION 1
int moert_collectives_abi_version(void);

/* Joins the process group the launcher made, once per process:
   - under mpirun (Open MPI: OMPI_COMM_WORLD_SIZE is set), the MPI world:
     libmpi.so.40 is loaded with dlopen (moert never links MPI), MPI is
     initialized unless the host did, and the rank and size are MPI's;
   - with RANK and WORLD_SIZE set (torchrun) and WORLD_SIZE > 1, fails:
     on the CPU the collectives run over MPI, launch with mpirun;
   - otherwise a world of one rank (collectives are local copies).
   Fails, with the reason, when libmpi cannot be loaded or initialized. */
int moert_comm_init(void);
/* moert_comm_init, and with allow_torchrun non-zero a torchrun-style launch
   (WORLD_SIZE > 1 without mpirun) is accepted: rank and size come from
   RANK and WORLD_SIZE, and only the CUDA backend's collectives (NCCL, whose
   communicator meets at MASTER_ADDR:MASTER_PORT) can run there; the CPU
   collectives then fail with "launch with mpirun -n N". */
int moert_comm_init_launch(int allow_torchrun);
/* This process's rank and the number of ranks (0 and 1 before init). */
int moert_comm_rank(void);
int moert_comm_size(void);
/* Element-wise maximum of values[0..count) over all ranks, in place (over
   MPI under mpirun, over the NCCL communicator under torchrun). */
int moert_comm_allreduce_max_f64(double *values, int count);
/* Finalizes MPI if moert_comm_init initialized it. */
int moert_comm_finalize(void);

/* What expert-parallel artifacts call (moek.exchange_counts,
   moek.all_to_all). Both are collective: every rank of the world calls
   them in the same order. `ranks` is the world size the program was
   compiled for; `segments` the length of the count arrays (a multiple of
   `ranks`: block d of segments/ranks counts belongs to rank d).
   They return 0, or non-zero after recording the reason, which the call of
   the artifact's function then reports (an artifact cannot handle errors);
   after a failure they do nothing until that call ends. */
int32_t moert_exchange_counts_v1(const int32_t *counts, int32_t *received,
                                 int64_t segments, int64_t ranks);
/* out[i] = the sum over all ranks of in[i], i < count (the EP group's
   expert loads, which the aux loss counts). */
int32_t moert_all_reduce_sum_i32_v1(const int32_t *in, int32_t *out,
                                    int64_t count, int64_t ranks);
/* Sends rows: segment g (counts[g] rows of row_bytes bytes, consecutive
   from `rows`, which holds rows_capacity rows) goes to rank
   g / (segments/ranks); receives into `received` (received_capacity rows)
   the blocks of received_counts from rank 0, 1, ... in order. Fails before
   communicating when the counts do not fit the buffers. */
int32_t moert_all_to_all_v1(const void *rows, const int32_t *counts,
                            int64_t rows_capacity,
                            const int32_t *received_counts, void *received,
                            int64_t received_capacity, int64_t segments,
                            int64_t ranks, int64_t row_bytes);

/* Streams and events. Communication runs on the runtime's communication
   stream (on the CPU: one thread that makes every MPI call, in order);
   compiled code is the compute stream. moert_all_to_all_start_v1 starts
   the all-to-all of moert_all_to_all_v1 there and returns its event (> 0;
   0 after a failure, recorded as above); until moert_event_wait_v1(event)
   returns, `rows` must not change and `received` must not be read. What the
   compute stream runs in between overlaps the transfer
   (moe-overlap-communication schedules it). moert_all_to_all_v1 is start
   and wait in one. */
int64_t moert_all_to_all_start_v1(const void *rows, const int32_t *counts,
                                  int64_t rows_capacity,
                                  const int32_t *received_counts,
                                  void *received, int64_t received_capacity,
                                  int64_t segments, int64_t ranks,
                                  int64_t row_bytes);
int32_t moert_event_wait_v1(int64_t event);

/* The CUDA backend's collectives (NCCL, loaded with dlopen): the same
   contract as the CPU entry points above, on device pointers (rows, counts,
   received). They run on the runtime's communication stream, a CUDA stream
   of its own, after the work already queued on the call's stream (the
   legacy stream unless a caller gave its own), and the host waits for none
   of them: the exchange of counts and the all-to-all's wait make the call's
   stream wait for the transfer on the device (cuStreamWaitEvent), so the
   kernels launched between a start and its wait run beside it, and the
   host never reads a split size. The all-to-all pulls every peer's rows
   from a staging buffer the node's ranks map through CUDA IPC, between two
   one-int NCCL handshakes; where that cannot run (moert built without nvcc,
   a driver without IPC, MOERT_ALL_TO_ALL=host) the counts come back to the
   host and NCCL moves the rows. moert_cuda_drain_v1 (which moert's
   function call runs after the entry returns) waits for all of them and
   reports the first failure. The communicator is made at the first call:
   under mpirun from the MPI rank and size (the ncclUniqueId broadcast over
   MPI), under torchrun (moert_comm_init_launch(1)) from RANK, WORLD_SIZE,
   MASTER_ADDR, MASTER_PORT, alone for one rank. No wait blocks in the
   driver: a failed collective (NCCL's asynchronous error) or one that does
   not finish in MOERT_NCCL_TIMEOUT_S seconds (default 120) aborts the
   communicator and fails with the rank's name. MOERT_NCCL_LIBRARY names
   another libnccl. */
int32_t moert_cuda_exchange_counts_v1(const int32_t *counts, int32_t *received,
                                      int64_t segments, int64_t ranks);
int32_t moert_cuda_all_reduce_sum_i32_v1(const int32_t *in, int32_t *out,
                                         int64_t count, int64_t ranks);
int32_t moert_cuda_all_to_all_v1(const void *rows, const int32_t *counts,
                                 int64_t rows_capacity,
                                 const int32_t *received_counts,
                                 void *received, int64_t received_capacity,
                                 int64_t segments, int64_t ranks,
                                 int64_t row_bytes);
int64_t moert_cuda_all_to_all_start_v1(
    const void *rows, const int32_t *counts, int64_t rows_capacity,
    const int32_t *received_counts, void *received, int64_t received_capacity,
    int64_t segments, int64_t ranks, int64_t row_bytes);
int32_t moert_cuda_event_wait_v1(int64_t event);
/* Waits (polling, within the time limit) for every CUDA collective started
   since the last drain; 0, or 1 with the first failure for
   moert_comm_take_error (a rank that failed, rows that did not fit). */
int32_t moert_cuda_drain_v1(void);

/* For hosts that call the collectives themselves (and the tests): the
   reason the first failed collective recorded, taken (later collectives run
   again). Returns 1 and copies it into `message` (NUL-terminated, cut at
   `size`), or 0 when none failed. */
int moert_comm_take_error(char *message, size_t size);

/* CUDA streams and events as the runtime makes them (CUstream, CUevent of
   the current device's primary context; non-blocking streams): what the
   collectives run on, for hosts and compiled code that order work across
   streams. NULL or non-zero with the reason on failure. */
void *moert_stream_create_v1(void);
int32_t moert_stream_destroy_v1(void *stream);
void *moert_event_create_v1(void);
int32_t moert_event_record_v1(void *event, void *stream);
int32_t moert_stream_wait_event_v1(void *stream, void *event);
int32_t moert_event_destroy_v1(void *event);

/* What the communication stream did since the last reset: busy_ms running
   collectives, waited_ms the compute stream spent blocked on their events
   (communication it could not hide: busy_ms - waited_ms was hidden). */
typedef struct moert_comm_stats {
  double busy_ms;
  double waited_ms;
  int64_t collectives;
} moert_comm_stats;
void moert_comm_stats_get(moert_comm_stats *out);
void moert_comm_stats_reset(void);

/* Tracing: while enabled, every collective (communication lane) and every
   span of compiled code between the runtime's calls (compute lane) is
   recorded. moert_trace_write_events writes this rank's spans, and takes
   them, as Chrome trace events, one JSON object per line (pid: the rank;
   tid 0: compute, 1: communication); a trace file is
   {"traceEvents": [those objects, comma-separated]}. */
void moert_trace_enable(int enabled);
int moert_trace_write_events(const char *path);

/* NCCL, which the CUDA backend's collectives will run over, loaded with
   dlopen (libnccl.so.2; moert never links it): its version code (21903 for
   2.19.3) in *version, or non-zero with the reason (not installed, older
   than 2.7, which has ncclSend/ncclRecv). */
int moert_nccl_version(int *version);

/* torchrun's rendezvous: with RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT
   set, rank 0's blob[0..bytes) reaches every rank (rank 0 listens on
   MASTER_PORT, the others connect; an NCCL communicator needs rank 0's
   ncclUniqueId this way when there is no mpirun). Fails with the reason
   after timeout_seconds, or when a variable is missing. */
int moert_rendezvous_broadcast(void *blob, size_t bytes, int timeout_seconds);

/*===--- CUDA ---===*/
/* Writes a description of the GPU that CUDA artifacts run on, such as
   "NVIDIA H100 80GB HBM3, sm_90" (name, then compute capability), into
   buffer[0..size), NUL-terminated. Fails, with the reason in
   moert_last_error(), if there is no usable driver or device, or if the
   text does not fit (256 bytes always suffice). */
int moert_cuda_device_name(char *buffer, size_t size);

/* The most device memory that CUDA artifacts' own allocations (the planned
   arena, results, gradients, buffers of dynamic size: what their host code
   asks mgpuMemAlloc for) held at once since the last reset, in bytes;
   arguments moert copies in and blocks cached for reuse do not count.
   0 when no CUDA artifact ran. Resetting starts from what is held now. */
int64_t moert_device_memory_high_water(void);
void moert_device_memory_reset_high_water(void);

#ifdef __cplusplus
}
#endif

#endif /* MOE_MLIR_RUNTIME_MOERT_H */
