// scripts/convert_checkpoint.py on a pytorch_model.bin that the training code
// writes from the demo model with FiD's tensor names: the converted folder holds
// the demo model's tensors value for value and generates what it generates. A
// .bin that is not a state dict is refused, naming the file. Needs Debian's
// python3-torch (installed for the tests by scripts/packages.sh).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "core/safetensors.h"
#include "tests/cli_run.h"
#include "tests/fixtures.h"
#include "tests/model_files.h"
#include "tests/sample_corpus.h"

namespace kvrag {
namespace {
using ::testing::HasSubstr;
using testing::CliRun;
using testing::describe;
using testing::kDemoModel;
using testing::run_kvrag;
using testing::TempDir;

// Debian's interpreter: python3-torch is installed for it, not for others on PATH.
constexpr const char* kPython = "/usr/bin/python3";

bool torch_available() {
  return std::system(str_cat(kPython, " -c 'import torch' 2>/dev/null").c_str()) == 0;
}

// Runs a command through the shell; its exit status, stderr appended to `err_file`.
int run_shell(const std::string& command, const std::string& err_file) {
  const int status = std::system(str_cat(command, " 2>", err_file, " >/dev/null").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string converter_command(const std::string& src, const std::string& out) {
  return str_cat(kPython, " " KVRAG_SOURCE_DIR "/scripts/convert_checkpoint.py ", src, " ", out,
                 " --kvrag " KVRAG_CLI_PATH);
}

TEST(ConvertCheckpoint, FidPytorchBinBecomesTheDemoModel) {
  if (!torch_available()) KVRAG_SKIP_OR_FAIL("python3-torch is not installed");
  TempDir tmp("kvrag-convert");
  ASSERT_EQ(run_shell(str_cat(kPython, " " KVRAG_SOURCE_DIR "/training/export.py --out ",
                              kDemoModel, " --pytorch-bin ", tmp.file("bin"), " --fid-keys"),
                      tmp.file("export.err")),
            0)
      << testing::read_text(tmp.file("export.err"));
  ASSERT_EQ(run_shell(converter_command(tmp.file("bin"), tmp.file("out")), tmp.file("convert.err")),
            0)
      << testing::read_text(tmp.file("convert.err"));

  const SafeTensorsFile converted(tmp.file("out/model.safetensors"));
  const SafeTensorsFile demo(kDemoModel + "/model.safetensors");
  ASSERT_EQ(converted.names(), demo.names());  // FiD's "encoder.encoder." prefix is gone
  for (const std::string& name : demo.names()) {
    EXPECT_EQ(converted.info(name).shape, demo.info(name).shape) << name;
    EXPECT_EQ(converted.read_f32(name), demo.read_f32(name)) << name;
  }

  const std::string prompt = "question: Who founded Wiafoundholt?";
  const CliRun original = run_kvrag({"generate", "--model", kDemoModel, prompt});
  const CliRun from_bin = run_kvrag({"generate", "--model", tmp.file("out"), prompt});
  ASSERT_EQ(from_bin.exit_code, 0) << describe(from_bin);
  EXPECT_EQ(from_bin.out, original.out);
}

TEST(ConvertCheckpoint, ABinThatIsNotAStateDictIsRefused) {
  if (!torch_available()) KVRAG_SKIP_OR_FAIL("python3-torch is not installed");
  TempDir tmp("kvrag-convert-bad");
  std::filesystem::create_directories(tmp.file("bin"));
  testing::write_text(tmp.file("bin/config.json"), testing::read_text(kDemoModel + "/config.json"));
  ASSERT_EQ(run_shell(str_cat(kPython, " -c \"import torch; torch.save([1, 2], '",
                              tmp.file("bin/pytorch_model.bin"), "')\""),
                      tmp.file("save.err")),
            0);
  EXPECT_EQ(run_shell(converter_command(tmp.file("bin"), tmp.file("out")), tmp.file("convert.err")),
            1);
  EXPECT_THAT(testing::read_text(tmp.file("convert.err")),
              HasSubstr("pytorch_model.bin: holds a list, not a state dict"));
}

}  // namespace
}  // namespace kvrag
