// Where the tests find the shared T5 reference fixtures.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kvrag::testing {

// $KVRAG_T5_FIXTURES, or ../shared/fixtures/t5 beside the source tree.
std::string t5_fixtures_dir();

// Every case folder under the fixtures dir (one holding config.json,
// model.safetensors and expected.safetensors), sorted by name.
std::vector<std::string> t5_fixture_cases();

// A parameterised test's name for a case folder: its folder name.
std::string fixture_case_name(const ::testing::TestParamInfo<std::string>& info);

// True when the tests run in CI (CI=true), where missing fixtures must fail
// instead of skipping.
bool running_in_ci();

}  // namespace kvrag::testing

// Skips the current test with `reason` outside CI, fails it in CI.
#define KVRAG_SKIP_OR_FAIL(reason)                  \
  do {                                              \
    if (::kvrag::testing::running_in_ci()) {        \
      FAIL() << (reason) << " (CI=true: required)"; \
    } else {                                        \
      GTEST_SKIP() << (reason);                     \
    }                                               \
  } while (0)
