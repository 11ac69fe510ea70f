// Helpers for the API tests: error expectations, images from/to double arrays, data sources.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tconv/tconv.hpp"

namespace tconv::test {

template <class F>
void expect_error(F f, ErrorCode code, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "no error thrown; expected " << to_string(code) << " with '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << "message: " << e.what();
  }
}

// An image N×H×W×C filled from dense NHWC doubles.
inline Image make_image(const Device& d, const std::vector<double>& v, int64_t n, int64_t h, int64_t w, int64_t c,
                        DataType t = DataType::float32) {
  Image img(d, ImageDescriptor{w, h, c, n, t});
  const int64_t per = h * w * c;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<float> f(v.begin() + i * per, v.begin() + (i + 1) * per);
    img.write_floats(f.data(), ImageLayout::hwc, i);
  }
  return img;
}
inline std::vector<double> read_all(const Image& img) {
  std::vector<double> out;
  for (int64_t i = 0; i < img.number_of_images(); ++i) {
    auto f = img.read_floats(ImageLayout::hwc, i);
    out.insert(out.end(), f.begin(), f.end());
  }
  return out;
}
inline std::vector<double> buffer_floats(const Buffer& b) {
  const float* p = static_cast<const float*>(b.contents());
  return std::vector<double>(p, p + b.length() / 4);
}

inline std::shared_ptr<ArrayDataSource> source(const ConvolutionDescriptor& d, const std::vector<double>& w,
                                               const std::vector<double>& b = {}) {
  return std::make_shared<ArrayDataSource>(d, std::vector<float>(w.begin(), w.end()),
                                           std::vector<float>(b.begin(), b.end()));
}

inline void run(CommandBuffer& cb) {
  cb.commit();
  cb.wait_and_check();
}

inline void expect_equal(const std::vector<double>& got, const std::vector<double>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << what << " at " << i;
}

}  // namespace tconv::test
