# CTest script: data-parallel `tconv train --gpus N` end to end (needs NCCL and a GPU; prints "SKIPPED:"
# otherwise, which ctest reports as skipped).
#  * --gpus 1 runs the whole reduction path (NCCL, one rank) and must give exactly the one-GPU run's
#    result (--device cuda): the all-reduce of one rank with weight 1 is an identity, bit for bit — the
#    saved models are byte-identical; a second --gpus 1 run too (determinism); the id file and the rank
#    logs are gone afterwards; `tconv reconstruct` reproduces the recorded test MSE.
#  * With 2 or more GPUs: --gpus 2 on the same global batch matches the one-GPU run's test MSE within 1%
#    (float32 summation order differs) and is deterministic across runs (byte-identical models).
# Arguments: -DTCONV=<tconv binary> -DWORK=<scratch folder> [-DDATA=<folder>].
if(NOT TCONV OR NOT WORK)
  message(FATAL_ERROR "usage: cmake -DTCONV=... -DWORK=... [-DDATA=...] -P train_gpus.cmake")
endif()
set(_data_args)
if(DATA)
  set(_data_args --data ${DATA})
elseif(DEFINED ENV{TCONV_TEST_DATA})
  set(_data_args --data $ENV{TCONV_TEST_DATA})
endif()
# A partial last batch (2000 = 15·128 + 80) so that the shards of the last step differ from the others'.
set(_common --epochs 2 --batch 128 --limit-train 2000 --limit-test 500 --progress 0 ${_data_args})
file(REMOVE_RECURSE ${WORK})

# Runs tconv train into ${WORK}/<name>; sets <name>_out (stdout), <name>_rc and <name>_mse (6 decimals as
# an integer, from the summary line).
function(train name)
  execute_process(COMMAND ${TCONV} train ${ARGN} ${_common} --out ${WORK}/${name}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(${name}_rc ${rc} PARENT_SCOPE)
  set(${name}_out "${out}${err}" PARENT_SCOPE)
  if(rc EQUAL 0)
    if(NOT out MATCHES "test MSE 0\\.([0-9]+) after")
      message(FATAL_ERROR "${name}: no test MSE in the output:\n${out}")
    endif()
    math(EXPR mse "1${CMAKE_MATCH_1} - 1000000")
    set(${name}_mse ${mse} PARENT_SCOPE)
    message(STATUS "${name} (${ARGN}):\n${out}")
  endif()
endfunction()

function(require_same_model a b why)
  file(SHA256 ${WORK}/${a}/model.safetensors ha)
  file(SHA256 ${WORK}/${b}/model.safetensors hb)
  if(NOT ha STREQUAL hb)
    message(FATAL_ERROR "${why}: ${a} and ${b} saved different models\n${a}: ${${a}_out}\n${b}: ${${b}_out}")
  endif()
endfunction()

train(one_gpu --device cuda)
if(NOT one_gpu_rc EQUAL 0)
  if(one_gpu_out MATCHES "no CUDA backend|CUDA device\\(s\\) are present")
    message(STATUS "SKIPPED: no CUDA device here:\n${one_gpu_out}")
    return()
  endif()
  message(FATAL_ERROR "tconv train --device cuda failed (${one_gpu_rc}):\n${one_gpu_out}")
endif()

train(ranks1 --gpus 1)
if(NOT ranks1_rc EQUAL 0)
  if(ranks1_out MATCHES "has no NCCL|needs NCCL")
    message(STATUS "SKIPPED: this build has no NCCL:\n${ranks1_out}")
    return()
  endif()
  message(FATAL_ERROR "tconv train --gpus 1 failed (${ranks1_rc}):\n${ranks1_out}")
endif()
if(NOT ranks1_out MATCHES "data-parallel: 1 rank")
  message(FATAL_ERROR "--gpus 1 did not report its data-parallel setup:\n${ranks1_out}")
endif()
require_same_model(one_gpu ranks1 "one rank must reproduce the one-GPU run exactly")
train(ranks1_again --gpus 1)
if(NOT ranks1_again_rc EQUAL 0)
  message(FATAL_ERROR "the second --gpus 1 run failed (${ranks1_again_rc}):\n${ranks1_again_out}")
endif()
require_same_model(ranks1 ranks1_again "data-parallel training must be deterministic")
file(GLOB leftovers ${WORK}/ranks1/nccl_id ${WORK}/ranks1/rank*.log)
if(leftovers)
  message(FATAL_ERROR "--gpus 1 left ${leftovers} behind")
endif()
execute_process(COMMAND ${TCONV} reconstruct --model ${WORK}/ranks1/model.safetensors --out ${WORK}/again.png
                        ${_data_args}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "identical")
  message(FATAL_ERROR "tconv reconstruct did not reproduce the --gpus 1 test MSE (${rc}):\n${out}\n${err}")
endif()

train(ranks2 --gpus 2)
if(NOT ranks2_rc EQUAL 0)
  if(ranks2_out MATCHES "needs one GPU per rank")
    message(STATUS "several GPUs: not run (one GPU here): ${ranks2_out}")
    file(REMOVE_RECURSE ${WORK})
    return()
  endif()
  message(FATAL_ERROR "tconv train --gpus 2 failed (${ranks2_rc}):\n${ranks2_out}")
endif()
math(EXPR diff "${ranks2_mse} - ${one_gpu_mse}")
if(diff LESS 0)
  math(EXPR diff "-${diff}")
endif()
math(EXPR diff100 "${diff} * 100")
if(diff100 GREATER one_gpu_mse)
  message(FATAL_ERROR "--gpus 2 test MSE 0.${ranks2_mse} (millionths) is more than 1% from the one-GPU run's "
                      "${one_gpu_mse} on the same global batch")
endif()
train(ranks2_again --gpus 2)
if(NOT ranks2_again_rc EQUAL 0)
  message(FATAL_ERROR "the second --gpus 2 run failed (${ranks2_again_rc}):\n${ranks2_again_out}")
endif()
require_same_model(ranks2 ranks2_again "data-parallel training over 2 GPUs must be deterministic")
file(REMOVE_RECURSE ${WORK})
