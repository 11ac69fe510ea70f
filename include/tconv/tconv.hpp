// tconv — umbrella header: the whole public object API.
#pragma once

#include "tconv/buffer.hpp"
#include "tconv/command_buffer.hpp"
#include "tconv/convolution.hpp"
#include "tconv/convolution_transpose.hpp"
#include "tconv/convolution_transpose_gradient.hpp"
#include "tconv/data_source.hpp"
#include "tconv/descriptor.hpp"
#include "tconv/device.hpp"
#include "tconv/error.hpp"
#include "tconv/image.hpp"
#include "tconv/kernel.hpp"
#include "tconv/state.hpp"
#include "tconv/types.hpp"
#if __has_include("tconv/convert.hpp")
#include "tconv/convert.hpp"
#endif
#if __has_include("tconv/optimizer.hpp")
#include "tconv/optimizer.hpp"
#endif
#if __has_include("tconv/neuron.hpp")
#include "tconv/neuron.hpp"
#endif
#if __has_include("tconv/loss.hpp")
#include "tconv/loss.hpp"
#endif
#if __has_include("tconv/tuning.hpp")
#include "tconv/tuning.hpp"
#endif
#if __has_include("tconv/communicator.hpp")
#include "tconv/communicator.hpp"
#endif
