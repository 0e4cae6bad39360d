// Exercise 02/deadlock — two locks taken in opposite orders (hard, ~30 min).
//
// Task: two threads move money between two accounts, each guarded by a
// std::mutex of its own: one thread pays alice -> bob, the other bob -> alice,
// and transfer() locks the payer's account, then the payee's. Run it: it
// hangs (stop it with Ctrl-C). Find out why, then fix transfer() so that it
// can never deadlock, whatever the timing, while still holding both
// accounts' locks when it moves the money. The grader runs it with a short
// timeout (a hang scores zero) and under ThreadSanitizer, which also reports
// a lock-order inversion that has not hung yet; both balances must end
// where they started.
//
//   scripts/grade 02/deadlock          grade it
//   scripts/grade --hint 02/deadlock   a hint
#include <fmt/core.h>

#include <chrono>
#include <functional>
#include <latch>
#include <mutex>
#include <thread>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"
#include "conclab/threading.hpp"

struct Account {
  std::mutex mutex;
  long balance = 1000;
};

Account alice;
Account bob;

// TODO: two threads calling this with the accounts swapped can deadlock.
void transfer(Account& from, Account& to, long amount, std::chrono::microseconds check) {
  std::lock_guard lock_from(from.mutex);
  std::this_thread::sleep_for(check);  // checking the payment takes a while
  std::lock_guard lock_to(to.mutex);
  from.balance -= amount;
  to.balance += amount;
}

void pay(Account& from, Account& to, int transfers, std::chrono::microseconds check, std::latch& start_line) {
  start_line.arrive_and_wait();  // both threads start paying at once
  for (int i = 0; i < transfers; ++i) transfer(from, to, 10, check);
}

int main(int argc, char** argv) {
  CLI::App app{"Exercise 02/deadlock: two threads pay each other, each account under its own mutex."};
  int transfers = 200;
  int check_us = 100;
  app.add_option("--transfers", transfers, "transfers each thread makes")
      ->check(conclab::int_in_range(1, 1'000'000))
      ->capture_default_str();
  app.add_option("--check-us", check_us, "how long checking a payment takes, in microseconds")
      ->check(conclab::int_in_range(0, 1'000'000))
      ->capture_default_str();

  return conclab::run_main(app, argc, argv, [&] {
    conclab::Stopwatch stopwatch;
    std::chrono::microseconds check{check_us};
    std::latch start_line(2);
    conclab::Thread a(pay, std::ref(alice), std::ref(bob), transfers, check, std::ref(start_line));
    conclab::Thread b(pay, std::ref(bob), std::ref(alice), transfers, check, std::ref(start_line));
    a.start();
    try {
      b.start();
    } catch (...) {
      start_line.count_down();  // let a go: joining it must not hang
      throw;
    }
    a.join();
    b.join();
    fmt::print("model=transfer transfers={} check_us={} alice={} bob={} expected=1000 elapsed_s={:.3f}\n", transfers,
               check_us, alice.balance, bob.balance, stopwatch.seconds());
  });
}
