// Data-parallel `tconv train --gpus N`: one process per GPU, gradients all-reduced through tconv's
// Communicator (NCCL). Every rank holds the whole model and sees every global batch; rank r trains on its
// shard of the batch (shard_of) and contributes its gradients weighted by the shard's share of the batch,
// so the reduced gradient is the gradient of the global batch's mean loss — the one-GPU run's, up to
// float32 summation order. All ranks apply the same Adam step to the same bits and stay identical.
//
// Processes. Without --rank, the command is rank 0: it generates the NCCL id, writes it to
// <out>/nccl_id, and starts ranks 1..N-1 as children of itself (same arguments plus --rank r; their
// output goes to <out>/rank<r>.log). A watchdog ends the whole group when a child fails, and a child dies
// with rank 0 (PR_SET_PDEATHSIG), so nothing is left waiting in a collective. With --rank R the process is
// one rank of a group started by someone else (e.g. one per node): it reads the id from --nccl-id-file
// (rank 0 writes it; the others wait for it) or from TCONV_NCCL_ID when that is set.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tconv/communicator.hpp"
#include "tconv/device.hpp"
#include "train_processes.hpp"

namespace tconv::cli::train {

// Rank `rank`'s part of a batch of `n` images: images [offset, offset + count) of the batch, and its
// weight count / n in the sum of the ranks' mean-loss gradients. Shards differ by at most one image
// (the first n mod ranks ranks take one more). A rank whose shard is empty (n < ranks) still takes part
// in the all-reduce: it trains on the batch's first image with weight 0.
struct Shard {
  int64_t offset = 0;
  int64_t count = 0;
  float weight = 1;
};
Shard shard_of(int64_t n, int rank, int ranks);

class ParallelRun {
 public:
  // `ranks` = --gpus; `rank` = --rank or -1 (this process is rank 0 and starts the others); `args` are
  // the `train` command's arguments (argv[1..]) that the children get, with --rank r added.
  ParallelRun(int ranks, int rank, std::string id_file, std::vector<std::string> args, std::string out_dir);
  ~ParallelRun();  // a run that did not finish(): aborts the communicator, ends and reaps the children
  ParallelRun(const ParallelRun&) = delete;
  ParallelRun& operator=(const ParallelRun&) = delete;

  int rank() const { return rank_; }
  int ranks() const { return ranks_; }
  // The GPU of this rank: cuda:<rank> on one node (cuda:<rank mod GPUs> with --rank), or the one that
  // --device names when there is a single rank per node. Throws for a CPU device or too few GPUs.
  Device device(const std::string& device_text, int threads) const;
  // Rank 0: makes the id and shares it; without --rank it also starts ranks 1..N-1 (early, so that they
  // load their data while this process loads its own). Other ranks: nothing.
  void launch();
  // Joins the communicator (the other ranks read the id first). Blocks until every rank has joined.
  Communicator& connect(const Device& device);
  // Normal end: releases the communicator, waits for the children and throws Error(internal) naming
  // each rank that failed (with the end of its log); removes the id file and the children's logs.
  void finish();

 private:
  std::string log_path(int rank) const;

  int ranks_ = 1;
  int rank_ = 0;
  bool spawner_ = false;  // rank 0 without --rank: starts and supervises ranks 1..N-1
  std::string id_file_;
  std::vector<std::string> args_;
  std::string out_dir_;
  CommunicatorId id_;
  bool have_id_ = false;
  Communicator comm_;
  ChildProcesses children_;  // index r-1 → rank r
  bool finished_ = false;
};

// CPU threads each rank gets by default: the machine's cores shared among the ranks of one node.
int default_threads_per_rank(int ranks_on_node);

}  // namespace tconv::cli::train
