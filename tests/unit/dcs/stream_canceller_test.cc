#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "dcs/etcd3/http_transport.h"

namespace pgha::dcs::etcd3 {
namespace {

using std::chrono::milliseconds;

// The stream's thread clears the abort and then destroys the client it stops. If clearing did
// not wait for an abort under way, that abort would run on a destroyed client (a hang or a crash
// in the thread that interrupted: the HA loop).
TEST(StreamCancellerTest, ClearingTheAbortWaitsForAnAbortUnderWay) {
  for (bool cancel : {false, true}) {
    StreamCanceller canceller;
    std::atomic<bool> entered{false};
    std::atomic<bool> client_alive{true};
    std::atomic<bool> used_after_free{false};
    canceller.SetAbort([&] {
      entered = true;
      std::this_thread::sleep_for(milliseconds(100));
      if (!client_alive) {
        used_after_free = true;
      }
    });
    std::thread interrupter([&] { cancel ? canceller.Cancel() : canceller.Interrupt(); });
    while (!entered) {
      std::this_thread::yield();
    }
    canceller.SetAbort(nullptr);  // the stream's thread, its request done
    client_alive = false;         // ...destroys its client
    interrupter.join();
    EXPECT_FALSE(used_after_free) << (cancel ? "Cancel" : "Interrupt");
    EXPECT_EQ(canceller.cancelled(), cancel);
  }
}

TEST(StreamCancellerTest, InterruptWithNoStreamInFlightAbortsNothing) {
  StreamCanceller canceller;
  canceller.Interrupt();
  EXPECT_FALSE(canceller.cancelled());
  int calls = 0;
  canceller.SetAbort([&calls] { ++calls; });
  canceller.Interrupt();
  canceller.SetAbort(nullptr);
  canceller.Interrupt();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(canceller.TakeInterrupt()) << "the watch learns of it when it looks next";
  EXPECT_FALSE(canceller.TakeInterrupt());
}

}  // namespace
}  // namespace pgha::dcs::etcd3
