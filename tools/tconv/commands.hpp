// The tconv program's subcommands. Each lives in its own file (cmd_<name>.cpp) and returns the process
// exit status; errors are reported on stderr with their code and message, and give a non-zero status.
#pragma once

namespace tconv::cli {

int cmd_forward(int argc, char** argv);      // cmd_forward_grad.cpp
int cmd_grad(int argc, char** argv);         // cmd_forward_grad.cpp
int cmd_info(int argc, char** argv);         // cmd_info.cpp
int cmd_bench(int argc, char** argv);        // cmd_bench.cpp
int cmd_train(int argc, char** argv);        // cmd_train.cpp
int cmd_reconstruct(int argc, char** argv);  // cmd_train.cpp
int cmd_tune(int argc, char** argv);         // cmd_tune.cpp

}  // namespace tconv::cli
