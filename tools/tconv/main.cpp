// tconv — command-line entry: dispatches to one subcommand per file (commands.hpp).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "commands.hpp"
#include "tconv/error.hpp"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

const Command kCommands[] = {
#ifdef TCONV_HAVE_CMD_FORWARD_GRAD
    {"forward", tconv::cli::cmd_forward, "forward transposed convolution on .npy arrays"},
    {"grad", tconv::cli::cmd_grad, "gradients (dX, dW, db) of a transposed convolution on .npy arrays"},
#endif
#ifdef TCONV_HAVE_CMD_INFO
    {"info", tconv::cli::cmd_info, "build configuration, devices, algorithms, environment variables"},
#endif
#ifdef TCONV_HAVE_CMD_BENCH
    {"bench", tconv::cli::cmd_bench, "time the gradients on a suite of layers (JSON lines)"},
#endif
#ifdef TCONV_HAVE_CMD_TUNE
    {"tune", tconv::cli::cmd_tune, "time every algorithm on a suite's layers and fill a plan cache"},
#endif
#ifdef TCONV_HAVE_CMD_TRAIN
    {"train", tconv::cli::cmd_train, "train the convolutional auto-encoder on Fashion-MNIST"},
    {"reconstruct", tconv::cli::cmd_reconstruct, "reload a trained model and render its reconstructions"},
#endif
};

// OpenMP waiting (docs/reliability.md, "OpenMP wait policy"). libgomp's idle threads spin by default; on
// a loaded machine that cut throughput about 5x. libgomp reads OMP_WAIT_POLICY once, when it is loaded,
// before main() and before any constructor of tconv's (measured: a setenv() in a constructor, or in a
// .preinit_array entry, whose environment glibc resets, has no effect). So when the user chose nothing
// (neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT), set passive and re-execute this program once: same pid,
// arguments and descriptors, a fresh libgomp that reads it. TCONV_OMP_WAIT_POLICY_SET tells `tconv info`.
void prefer_passive_openmp_wait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) return;
  if (setenv("OMP_WAIT_POLICY", "passive", 0) != 0) return;
  setenv("TCONV_OMP_WAIT_POLICY_SET", "1", 1);
  execv("/proc/self/exe", argv);
  // No /proc (or exec refused): run on with libgomp's default, and leave the environment telling the truth.
  unsetenv("OMP_WAIT_POLICY");
  unsetenv("TCONV_OMP_WAIT_POLICY_SET");
}

void usage(FILE* f) {
  std::fprintf(f, "usage: tconv <command> [options]   (tconv <command> --help for its options)\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(f, "  %-12s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  prefer_passive_openmp_wait(argv);
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  for (const Command& c : kCommands) {
    if (std::strcmp(argv[1], c.name) == 0) {
      try {
        return c.run(argc - 1, argv + 1);
      } catch (const tconv::Error& e) {
        std::fprintf(stderr, "tconv %s: error: %s\n", c.name, e.what());
        return 1;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "tconv %s: error: internal: %s\n", c.name, e.what());
        return 1;
      }
    }
  }
  std::fprintf(stderr, "tconv: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
