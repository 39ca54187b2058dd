#include "pipeline/decode_batcher.h"

#include <exception>
#include <future>

#include "core/error.h"
#include "core/parallel.h"

namespace kvrag {

struct DecodeBatcher::Sequence {
  GreedyDecoding decoding;
  std::promise<Generation> result;
  // Set on the batcher's thread when the sequence ends; its result is
  // delivered only after it has left the active list, because the caller
  // may destroy it as soon as the result arrives.
  bool over = false;
  std::exception_ptr error;
  Generation generation;
};

DecodeBatcher::DecodeBatcher(const T5Decoder& decoder, int64_t max_batch, int64_t threads)
    : decoder_(decoder), max_batch_(max_batch), threads_(threads) {
  KVRAG_CHECK(max_batch >= 1, kInvalidArgument,
              "a decode batch must hold at least 1 sequence, got ", max_batch);
  KVRAG_CHECK(threads >= 1, kInvalidArgument, "batched decoding needs at least 1 thread, got ",
              threads);
  thread_ = std::thread([this] { run(); });
}

DecodeBatcher::~DecodeBatcher() {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

Generation DecodeBatcher::generate(const CrossMemory& memory, const GenerationOptions& options,
                                   const TokenCallback& on_token) {
  check_generation_options(options);
  KVRAG_CHECK(options.num_beams == 1, kInvalidArgument,
              "batched decoding is greedy; beam search (num_beams ", options.num_beams,
              ") decodes alone");
  // Checked here so that one unreadable memory cannot fail a shared pass.
  decoder_.check_memory(memory);
  Sequence sequence{GreedyDecoding(decoder_, memory, options, on_token), {}, false, nullptr, {}};
  std::future<Generation> result = sequence.result.get_future();
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    KVRAG_CHECK(!stopping_, kUnavailable, "the decoder is shutting down");
    waiting_.push_back(&sequence);
  }
  wake_.notify_all();
  return result.get();
}

DecodeBatcher::Counters DecodeBatcher::counters() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return counters_;
}

void DecodeBatcher::run() {
  set_thread_compute_threads(threads_);
  std::vector<Sequence*> active;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !waiting_.empty() || !active.empty(); });
      if (waiting_.empty() && active.empty()) return;  // stopping, nothing in flight
      // Joining between passes: a new sequence's first step runs with the
      // others' next ones.
      while (!waiting_.empty() && static_cast<int64_t>(active.size()) < max_batch_) {
        active.push_back(waiting_.front());
        waiting_.pop_front();
      }
    }
    step(active);
  }
}

void DecodeBatcher::step(std::vector<Sequence*>& active) {
  const auto end = [](Sequence* s, std::exception_ptr error) {
    s->over = true;
    s->error = std::move(error);
  };
  std::vector<OwnMemoryInput> inputs;
  std::vector<Sequence*> stepping;
  for (Sequence* s : active) {
    try {
      const auto& before_step = s->decoding.options().before_step;
      if (before_step) before_step();  // a request's deadline ends that request only
      inputs.push_back({s->decoding.next_input(), &s->decoding.memory()});
      stepping.push_back(s);
    } catch (...) {
      end(s, std::current_exception());
    }
  }
  if (!stepping.empty()) {
    try {
      DecoderOutputs out = decoder_.forward_each(inputs);
      for (size_t i = 0; i < stepping.size(); ++i) {
        Sequence* s = stepping[i];
        try {
          s->decoding.accept(out.logits.row(static_cast<int64_t>(i)),
                             out.cross_attention_each[i].row(0));
          if (s->decoding.done()) {
            s->generation = s->decoding.finish();
            end(s, nullptr);
          }
        } catch (...) {
          end(s, std::current_exception());
        }
      }
    } catch (...) {
      for (Sequence* s : stepping) end(s, std::current_exception());
    }
    const std::lock_guard<std::mutex> lock(mutex_);
    ++counters_.steps;
    counters_.sequences += static_cast<int64_t>(stepping.size());
  }
  std::vector<Sequence*> ended;
  std::erase_if(active, [&](Sequence* s) {
    if (s->over) ended.push_back(s);
    return s->over;
  });
  for (Sequence* s : ended) {
    if (s->error) {
      s->result.set_exception(s->error);
    } else {
      s->result.set_value(std::move(s->generation));
    }
  }
}

}  // namespace kvrag
