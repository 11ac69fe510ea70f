// Data-parallel training's ranks and shards (train_parallel.hpp).
#include "train_parallel.hpp"

#include <unistd.h>
#ifdef __linux__
#include <signal.h>
#include <sys/prctl.h>
#endif

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tconv/error.hpp"

namespace tconv::cli::train {
namespace {

constexpr const char* kParentVariable = "TCONV_TRAIN_PARENT";  // set in the children: rank 0's pid
constexpr double kIdWaitSeconds = 600;                          // ranks started by hand wait this long for rank 0

// The last `bytes` bytes of a child's log, for the error that reports its failure.
std::string log_tail(const std::string& path, std::size_t bytes = 2000) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "(no log at " + path + ")";
  std::ostringstream s;
  s << f.rdbuf();
  const std::string all = s.str();
  if (all.empty()) return "(its log " + path + " is empty)";
  return all.size() <= bytes ? all : "..." + all.substr(all.size() - bytes);
}

}  // namespace

Shard shard_of(int64_t n, int rank, int ranks) {
  if (ranks < 1 || rank < 0 || rank >= ranks || n < 0)
    throw Error(ErrorCode::internal, "shard_of(" + std::to_string(n) + ", " + std::to_string(rank) + ", " +
                                         std::to_string(ranks) + ")");
  const int64_t base = n / ranks, extra = n % ranks;
  Shard s;
  s.offset = rank * base + std::min<int64_t>(rank, extra);
  s.count = base + (rank < extra ? 1 : 0);
  // count / n rounded once to float32: exactly 1 for one rank, exactly 1/ranks for equal shards of a
  // power-of-two number of ranks.
  s.weight = n > 0 ? static_cast<float>(static_cast<double>(s.count) / static_cast<double>(n)) : 0.0f;
  return s;
}

int default_threads_per_rank(int ranks_on_node) {
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  return static_cast<int>(std::max<long>(1, (cores > 0 ? cores : 1) / std::max(1, ranks_on_node)));
}

ParallelRun::ParallelRun(int ranks, int rank, std::string id_file, std::vector<std::string> args, std::string out_dir)
    : ranks_(ranks), rank_(rank < 0 ? 0 : rank), spawner_(rank < 0), id_file_(std::move(id_file)),
      args_(std::move(args)), out_dir_(std::move(out_dir)) {
  if (ranks < 1) throw Error(ErrorCode::invalid_argument, "--gpus must be >= 1, got " + std::to_string(ranks));
  if (rank >= ranks)
    throw Error(ErrorCode::invalid_argument, "--rank " + std::to_string(rank) + " is outside [0, " +
                                                 std::to_string(ranks) + ") (--gpus is the number of ranks)");
  if (!Communicator::available())
    throw Error(ErrorCode::unsupported, "--gpus needs NCCL, and this tconv build has none (it needs the CUDA "
                                        "backend and NCCL at build time; see docs/training.md)");
  // NVLink multicast can put shared GPUs out of service: off in this process before anything starts NCCL,
  // and so in every child, which inherits the environment. (The communicator sets it too; setting it here,
  // before this command starts any thread, keeps setenv away from other threads' getenv.)
  setenv("NCCL_NVLS_ENABLE", "0", 1);
#ifdef __linux__
  // A child started by rank 0 dies with it, so that it is never left waiting in a collective.
  if (const char* parent = std::getenv(kParentVariable); parent != nullptr && !spawner_) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (std::to_string(getppid()) != parent) _exit(1);  // rank 0 died before the line above
  }
#endif
}

ParallelRun::~ParallelRun() {
  if (finished_) return;
  // An error ended this rank: drop pending collectives instead of waiting for peers, and end the children
  // (they would wait for this rank forever).
  comm_.abort();
  children_.terminate();
}

std::string ParallelRun::log_path(int rank) const { return out_dir_ + "/rank" + std::to_string(rank) + ".log"; }

Device ParallelRun::device(const std::string& text, int threads) const {
  const int count = Device::cuda_device_count();
  if (count == 0)
    throw Error(ErrorCode::device_unavailable, "--gpus " + std::to_string(ranks_) + " needs CUDA devices, and " +
                                                   "this machine (or build) has none");
  if (text == "cpu") throw Error(ErrorCode::invalid_argument, "--gpus trains on GPUs; it does not take --device cpu");
  int ordinal = spawner_ ? rank_ : rank_ % count;
  if (!text.empty() && text != "cuda") {
    if (spawner_ && ranks_ > 1)
      throw Error(ErrorCode::invalid_argument, "with --gpus " + std::to_string(ranks_) + " rank r uses cuda:r; " +
                                                   "--device '" + text + "' names one GPU for all of them");
    char* end = nullptr;
    const long k = text.rfind("cuda:", 0) == 0 ? std::strtol(text.c_str() + 5, &end, 10) : -1;
    if (k < 0 || end == nullptr || *end != '\0' || end == text.c_str() + 5)
      throw Error(ErrorCode::invalid_argument, "unknown --device '" + text + "' (cpu, cuda, cuda:N)");
    ordinal = static_cast<int>(k);
  }
  if (spawner_ && ranks_ > count)
    throw Error(ErrorCode::device_unavailable, "--gpus " + std::to_string(ranks_) + " needs one GPU per rank, but " +
                                                   std::to_string(count) + " CUDA device(s) are present");
  Device d = Device::cuda(ordinal);
  d.set_num_threads(threads > 0 ? threads : default_threads_per_rank(spawner_ ? ranks_ : 1));
  return d;
}

void ParallelRun::launch() {
  if (rank_ != 0 || have_id_) return;
  if (std::getenv("TCONV_NCCL_ID") != nullptr) {
    id_ = CommunicatorId::from_environment("TCONV_NCCL_ID");
  } else {
    id_ = CommunicatorId::generate();
    id_.write_file(id_file_);
  }
  have_id_ = true;
  if (!spawner_ || ranks_ == 1) return;
  char self[4096];
  const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) throw Error(ErrorCode::io_error, "cannot find this program (/proc/self/exe) to start the other ranks");
  self[len] = '\0';
  std::vector<std::vector<std::string>> argv;
  std::vector<std::string> logs;
  for (int r = 1; r < ranks_; ++r) {
    std::vector<std::string> a = {self, "train"};
    a.insert(a.end(), args_.begin(), args_.end());
    a.insert(a.end(), {"--rank", std::to_string(r), "--nccl-id-file", id_file_});
    argv.push_back(std::move(a));
    logs.push_back(log_path(r));
  }
  children_.start(self, argv, logs, {{kParentVariable, std::to_string(getpid())}, {"NCCL_NVLS_ENABLE", "0"}});
  // A rank that fails while this one trains leaves the others waiting in a collective that can never
  // complete: report it and end the whole group at once. Nothing on this side can be unwound safely
  // (this rank may be blocked in that collective), hence _exit.
  children_.watch([this](std::size_t i, int status) {
    const int r = static_cast<int>(i) + 1;
    std::fprintf(stderr, "tconv train: error: rank %d of %d %s; ending the other ranks. End of its log:\n%s\n", r,
                 ranks_, describe_wait_status(status).c_str(), log_tail(log_path(r)).c_str());
    std::fflush(stderr);
    children_.terminate();
    _exit(1);
  });
}

Communicator& ParallelRun::connect(const Device& device) {
  if (rank_ == 0) launch();
  if (!have_id_) {
    id_ = std::getenv("TCONV_NCCL_ID") != nullptr ? CommunicatorId::from_environment("TCONV_NCCL_ID")
                                                   : CommunicatorId::read_file(id_file_, kIdWaitSeconds);
    have_id_ = true;
  }
  comm_ = Communicator(device, id_, rank_, ranks_);  // blocks until every rank has joined
  return comm_;
}

void ParallelRun::finish() {
  // Rank 0's communicator goes first: the children's teardown may wait for every rank to finalise.
  comm_ = Communicator();
  const std::vector<int> statuses = children_.wait_all();
  finished_ = true;
  std::string failures;
  for (std::size_t i = 0; i < statuses.size(); ++i)
    if (!wait_status_ok(statuses[i])) {
      const int r = static_cast<int>(i) + 1;
      failures += "\nrank " + std::to_string(r) + " " + describe_wait_status(statuses[i]) + "; end of its log:\n" +
                  log_tail(log_path(r));
    }
  if (!failures.empty()) throw Error(ErrorCode::internal, "data-parallel training: a rank failed" + failures);
  std::error_code ec;
  if (rank_ == 0 && std::getenv("TCONV_NCCL_ID") == nullptr) std::filesystem::remove(id_file_, ec);  // single use
  for (std::size_t i = 0; i < statuses.size(); ++i) std::filesystem::remove(log_path(static_cast<int>(i) + 1), ec);
}

}  // namespace tconv::cli::train
