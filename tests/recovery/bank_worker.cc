// bank_worker: a process that moves money between MariaDB and PostgreSQL through the
// transaction manager until it is killed (by a crash point or by its parent's SIGKILL), so the
// crash tests can check what recovery makes of whatever it left behind.
//
//   bank_worker --log-dir DIR --node-id N --ack-file FILE [--transfers K] [--threads T]
//               [--prefix P] [--seed S] [--recover-on-open] [--segment-size BYTES]
//               [--three-phase-agent NAME=ADDRESS=RM ... --agents-key FILE]
//               [--phase-timeout-ms MS] [--agents-after-votes] [--marker-on mariadb|postgres]
//
// With --three-phase-agent (once per agent; each stands for one resource manager) and the
// agents' key file, every transfer runs through three-phase commit instead of 2PC; its vote and
// acknowledgement timeouts are --phase-timeout-ms (default 2000), shorter than the agents'
// termination timeout. --agents-after-votes asks the agents once the databases voted
// (ThreePhaseOptions::ask_agents_during_prepare = false) instead of during their prepares.
//
// With --marker-on, every transfer runs through marker commit instead, its marker in the bank's
// marker table of that database (the branch there is the marker branch).
//
// Database settings come from the environment of scripts/servers.sh (see examples/bank).
// Every transfer whose Commit() reported it committed is appended to the ack file, fdatasync'd,
// before the next one starts: what the application has acknowledged to its own client.
// Exit codes: 0 done, 1 set-up failed, 2 usage.

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "examples/bank/bank.h"
#include "xa/decision_log.h"
#include "xa/three_phase.h"
#include "xa/transaction_manager.h"

int main(int argc, char** argv) {
  std::string log_dir, ack_file, prefix = "crash";
  uint32_t node_id = 0;
  long transfers = 1000000, threads = 1, seed = 1;
  uint64_t segment_size = 0;
  bool recover_on_open = false;
  bool agents_after_votes = false;
  std::vector<xa::ThreePhaseAgent> agents;
  std::string agents_key;
  std::string marker_on;
  long phase_timeout_ms = 2000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "bank_worker: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--log-dir") log_dir = next();
    else if (a == "--ack-file") ack_file = next();
    else if (a == "--node-id") node_id = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--transfers") transfers = std::stol(next());
    else if (a == "--threads") threads = std::stol(next());
    else if (a == "--prefix") prefix = next();
    else if (a == "--seed") seed = std::stol(next());
    else if (a == "--segment-size") segment_size = std::stoull(next());
    else if (a == "--recover-on-open") recover_on_open = true;
    else if (a == "--agents-key") agents_key = next();
    else if (a == "--phase-timeout-ms") phase_timeout_ms = std::stol(next());
    else if (a == "--agents-after-votes") agents_after_votes = true;
    else if (a == "--marker-on") marker_on = next();
    else if (a == "--three-phase-agent") {
      const std::string spec = next();
      const size_t first = spec.find('='), second = spec.rfind('=');
      if (first == std::string::npos || first == second) {
        std::cerr << "bank_worker: --three-phase-agent wants NAME=ADDRESS=RM, not " << spec << "\n";
        return 2;
      }
      agents.push_back(xa::ThreePhaseAgent{spec.substr(0, first),
                                           spec.substr(first + 1, second - first - 1),
                                           {spec.substr(second + 1)}});
    }
    else {
      std::cerr << "bank_worker: unknown argument " << a << "\n";
      return 2;
    }
  }
  if (log_dir.empty() || ack_file.empty() || node_id == 0) {
    std::cerr << "bank_worker: --log-dir, --ack-file and --node-id are required\n";
    return 2;
  }
  if (agents.empty() != agents_key.empty()) {
    std::cerr << "bank_worker: --three-phase-agent and --agents-key go together\n";
    return 2;
  }
  if (!agents.empty() && !marker_on.empty()) {
    std::cerr << "bank_worker: --three-phase-agent and --marker-on exclude each other\n";
    return 2;
  }
  const xa::Protocol protocol = !agents.empty()       ? xa::Protocol::kThreePhase
                                : !marker_on.empty() ? xa::Protocol::kMarkerCommit
                                                     : xa::Protocol::kTwoPhase;
  auto settings = xa::bank::SettingsFromEnvironment();
  if (!settings.ok()) {
    std::cerr << "bank_worker: " << settings.status().ToString() << "\n";
    return 1;
  }
  settings->table_prefix = prefix;
  auto bank = xa::bank::Bank::Connect(*settings);
  if (!bank.ok()) {
    std::cerr << "bank_worker: " << bank.status().ToString() << "\n";
    return 1;
  }
  xa::LogOptions log_options;
  log_options.dir = log_dir;
  log_options.node_id = node_id;
  if (segment_size > 0) log_options.segment_size_bytes = segment_size;
  auto log = xa::DecisionLog::Open(log_options);
  if (!log.ok()) {
    std::cerr << "bank_worker: " << log.status().ToString() << "\n";
    return 1;
  }
  xa::TransactionManagerOptions options;
  options.node_id = node_id;
  options.recover_on_open = recover_on_open;
  options.transaction_timeout = std::chrono::seconds(30);
  options.three_phase.agents = agents;
  options.three_phase.key_file = agents_key;
  options.three_phase.vote_timeout = std::chrono::milliseconds(phase_timeout_ms);
  options.three_phase.ack_timeout = std::chrono::milliseconds(phase_timeout_ms);
  options.three_phase.ask_agents_during_prepare = !agents_after_votes;
  (*bank)->RegisterFactories(options);
  if (!marker_on.empty()) {
    if (xa::Status used = (*bank)->UseMarkerOn(marker_on, options); !used.ok()) {
      std::cerr << "bank_worker: --marker-on: " << used.ToString() << "\n";
      return 2;
    }
  }
  auto manager = xa::TransactionManager::Open(options, **log);
  if (!manager.ok()) {
    std::cerr << "bank_worker: " << manager.status().ToString() << "\n";
    return 1;
  }
  int ack_fd = ::open(ack_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (ack_fd < 0) {
    std::cerr << "bank_worker: cannot open " << ack_file << ": " << std::strerror(errno) << "\n";
    return 1;
  }
  std::mutex ack_mu;
  std::atomic<long> remaining{transfers}, committed{0}, rolled_back{0}, failed{0};
  auto work = [&](long id) {
    auto teller = (*bank)->NewTeller();
    if (!teller.ok()) {
      std::cerr << "bank_worker: " << teller.status().ToString() << "\n";
      ++failed;
      return;
    }
    std::mt19937_64 random(static_cast<uint64_t>(seed) * 1000 + id);
    std::uniform_int_distribution<int> account(1, settings->accounts);
    std::uniform_int_distribution<int> amount(1, 60);
    while (remaining.fetch_sub(1) > 0) {
      int64_t value = amount(random) * (random() % 2 ? 1 : -1);
      xa::Xid xid;
      auto outcome = (*bank)->Transfer(**manager, *teller, account(random), account(random),
                                       value, &xid, protocol);
      if (!outcome.ok()) {
        if (failed.fetch_add(1) < 3) {  // the first few say why; the count says how many
          std::cerr << "bank_worker: transfer failed: " << outcome.status().ToString() << "\n";
        }
        // A lost session: make the teller reconnect on its next use.
        xa::Status(teller->mariadb->Open()).IgnoreError();
        xa::Status(teller->postgres->Open()).IgnoreError();
        continue;
      }
      if (*outcome == xa::Outcome::kCommitted ||
          *outcome == xa::Outcome::kCommittedCompletionPending) {
        std::string line = xa::bank::GtridHex(xid) + "\n";
        std::lock_guard<std::mutex> lock(ack_mu);
        if (::write(ack_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
            ::fdatasync(ack_fd) != 0) {
          std::cerr << "bank_worker: cannot write the ack file\n";
          std::_Exit(1);
        }
        ++committed;
      } else {
        ++rolled_back;
      }
      if (*outcome != xa::Outcome::kCommitted && *outcome != xa::Outcome::kRolledBack) {
        // A branch may still be prepared on the teller's MariaDB session (its outcome is the
        // agents' or the background's to finish), and MariaDB refuses XA START on a session
        // that holds a prepared branch: the next transfer gets fresh sessions. The old ones
        // close; MariaDB keeps a prepared branch past its session's end.
        auto fresh = (*bank)->NewTeller();
        if (fresh.ok()) teller = std::move(fresh);
      }
    }
  };
  std::vector<std::thread> pool;
  for (long t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& t : pool) t.join();
  xa::Status((*manager)->WaitForBackgroundCompletion(std::chrono::seconds(30))).IgnoreError();
  std::cout << "bank_worker: " << committed << " committed, " << rolled_back << " rolled back, "
            << failed << " failed\n";
  return 0;
}
