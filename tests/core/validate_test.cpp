// core::validate(): accepts valid canonical problems and declines invalid ones with a message that names
// the offending values (design §4.3).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "core/problem.hpp"

namespace tconv::core {
namespace {

Problem valid_problem() {
  Problem p;
  p.g.n = 2; p.g.c_in = 4; p.g.c_out = 6; p.g.groups = 2;
  p.g.h_in = 3; p.g.w_in = 5; p.g.kh = 3; p.g.kw = 2; p.g.stride_h = 2; p.g.stride_w = 1;
  p.g.pad_h = 1; p.g.pad_w = -1;
  p.g.h_out = Geometry::out_size(3, 3, 2, 1, 1, 1);
  p.g.w_out = Geometry::out_size(5, 2, 1, 1, -1, 0);
  return p;
}

TEST(Validate, AcceptsValidProblems) {
  Problem p = valid_problem();
  for (Direction d : {Direction::fwd, Direction::bwd_data, Direction::bwd_weights}) {
    p.dir = d;
    EXPECT_TRUE(validate(p).ok()) << validate(p).message;
  }
  p.dir = Direction::fwd;
  p.neuron = {NeuronType::relu, 0, 0, 0};
  p.with_bias = true;
  p.act_type = DataType::bfloat16;
  p.precision = Precision::fp16;
  EXPECT_TRUE(validate(p).ok());
  p = valid_problem();
  p.dir = Direction::bwd_weights;
  p.accumulate = true;
  EXPECT_TRUE(validate(p).ok());
}

TEST(Validate, DeclinesNonPositiveSizesNamingThem) {
  struct Field { int64_t Geometry::*member; const char* name; };
  const Field fields[] = {{&Geometry::n, "batch n"},         {&Geometry::c_in, "input channels"},
                          {&Geometry::c_out, "output channels"}, {&Geometry::groups, "groups"},
                          {&Geometry::h_in, "input height"},  {&Geometry::w_in, "input width"},
                          {&Geometry::h_out, "output height"}, {&Geometry::w_out, "output width"},
                          {&Geometry::kh, "kernel height"},   {&Geometry::kw, "kernel width"},
                          {&Geometry::stride_h, "stride height"}, {&Geometry::stride_w, "stride width"},
                          {&Geometry::dil_h, "dilation height"}, {&Geometry::dil_w, "dilation width"}};
  for (const Field& f : fields) {
    for (int64_t bad : {int64_t{0}, int64_t{-3}}) {
      Problem p = valid_problem();
      p.g.*f.member = bad;
      const Status s = validate(p);
      EXPECT_FALSE(s.ok()) << f.name << " = " << bad;
      EXPECT_EQ(s.code, ErrorCode::invalid_argument);
      EXPECT_NE(s.message.find(f.name), std::string::npos) << s.message;
      EXPECT_NE(s.message.find(std::to_string(bad)), std::string::npos) << s.message;
    }
  }
}

TEST(Validate, DeclinesGroupsNotDividingChannels) {
  Problem p = valid_problem();
  p.g.groups = 3;  // divides c_out = 6 but not c_in = 4
  Status s = validate(p);
  EXPECT_EQ(s.code, ErrorCode::invalid_argument);
  EXPECT_NE(s.message.find("groups (3)"), std::string::npos) << s.message;
  EXPECT_NE(s.message.find("(4)"), std::string::npos) << s.message;
  p.g.groups = 4;  // divides c_in but not c_out
  s = validate(p);
  EXPECT_EQ(s.code, ErrorCode::invalid_argument);
  EXPECT_NE(s.message.find("(6)"), std::string::npos) << s.message;
}

TEST(Validate, DeclinesOverflowingProducts) {
  Problem p = valid_problem();
  p.g.n = int64_t{1} << 30;
  p.g.h_in = int64_t{1} << 30;
  p.g.w_in = 1 << 10;
  const Status s = validate(p);
  EXPECT_EQ(s.code, ErrorCode::invalid_argument);
  EXPECT_NE(s.message.find("overflow"), std::string::npos) << s.message;
  EXPECT_NE(s.message.find(std::to_string(int64_t{1} << 30)), std::string::npos) << s.message;

  Problem w = valid_problem();
  w.g.c_out = int64_t{1} << 40;  // groups 2 still divides
  w.g.kh = int64_t{1} << 30;
  EXPECT_EQ(validate(w).code, ErrorCode::invalid_argument);

  Problem q = valid_problem();
  q.g.pad_h = -(int64_t{1} << 50);
  const Status sp = validate(q);
  EXPECT_EQ(sp.code, ErrorCode::invalid_argument);
  EXPECT_NE(sp.message.find(std::to_string(-(int64_t{1} << 50))), std::string::npos) << sp.message;
}

TEST(Validate, DeclinesUnsupportedTypesAndMisplacedFlags) {
  Problem p = valid_problem();
  p.act_type = DataType::uint8;
  Status s = validate(p);
  EXPECT_EQ(s.code, ErrorCode::unsupported);
  EXPECT_NE(s.message.find("uint8"), std::string::npos) << s.message;

  p = valid_problem();
  p.dir = Direction::bwd_data;
  p.neuron = {NeuronType::sigmoid, 0, 0, 0};
  EXPECT_EQ(validate(p).code, ErrorCode::invalid_argument);

  p = valid_problem();
  p.accumulate = true;  // fwd
  EXPECT_EQ(validate(p).code, ErrorCode::invalid_argument);
}

// Enum values outside their enumerations (a cast integer, a corrupt file) are rejected, naming the value.
TEST(Validate, DeclinesOutOfRangeEnumValues) {
  Problem p = valid_problem();
  p.precision = static_cast<Precision>(9);
  Status s = validate(p);
  EXPECT_EQ(s.code, ErrorCode::invalid_argument);
  EXPECT_NE(s.message.find("precision value 9"), std::string::npos) << s.message;

  p = valid_problem();
  p.dir = static_cast<Direction>(3);
  s = validate(p);
  EXPECT_EQ(s.code, ErrorCode::invalid_argument);
  EXPECT_NE(s.message.find("direction value 3"), std::string::npos) << s.message;

  p = valid_problem();
  p.neuron.type = static_cast<NeuronType>(200);
  s = validate(p);
  EXPECT_EQ(s.code, ErrorCode::invalid_argument);
  EXPECT_NE(s.message.find("neuron type value 200"), std::string::npos) << s.message;

  p = valid_problem();  // the last valid value of each still passes
  p.precision = Precision::fp16;
  p.neuron.type = NeuronType::gelu;
  EXPECT_TRUE(validate(p).ok()) << validate(p).message;
}

}  // namespace
}  // namespace tconv::core
