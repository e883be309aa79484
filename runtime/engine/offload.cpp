// make_gpu_offload: the CUDA executor where CUDA is built in, a clear refusal elsewhere.
#include "runtime/engine/offload.h"

#include "memory/error.h"
#if HEXE_HAVE_CUDA
#include "gpu_kernels/device.h"
#endif

namespace hexe {

#if HEXE_HAVE_CUDA
std::unique_ptr<GpuOffload> make_cuda_offload(const Model& model, const OffloadConfig& cfg, int64_t kv_tokens,
                                              int max_batch, const mem::ExpertHomes* homes);
std::string gpu_unavailable_reason(int device) {
  const gpu::DevicePresence p = gpu::probe_devices();
  if (p.count == 0) return p.reason;
  if (device < 0 || device >= p.count)
    return "CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(p.count) + " present)";
  return "";
}
#else
std::string gpu_unavailable_reason(int) {
  return "this hexe was built without CUDA (cmake -DHEXE_CUDA=ON with the CUDA toolkit installed)";
}
#endif

std::unique_ptr<GpuOffload> make_gpu_offload(const Model& model, const OffloadConfig& cfg, int64_t kv_tokens,
                                             int max_batch, const mem::ExpertHomes* homes) {
  const int L = model.spec().n_layers;
  if (cfg.gpu_layers <= 0 || cfg.gpu_layers > L)
    throw Error("GPU offload: gpu_layers is " + std::to_string(cfg.gpu_layers) + ", expected 1.." + std::to_string(L));
  if (cfg.head_on_gpu && cfg.gpu_layers != L)
    throw Error("GPU offload: the head runs on the GPU only when every layer does");
#if HEXE_HAVE_CUDA
  return make_cuda_offload(model, cfg, kv_tokens, max_batch, homes);
#else
  (void)kv_tokens, (void)max_batch, (void)homes;
  throw Error("this hexe was built without CUDA (cmake -DHEXE_CUDA=ON with the CUDA toolkit installed); "
              "GPU plans cannot run, use --strategy cpu");
#endif
}

}  // namespace hexe
