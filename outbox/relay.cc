#include "outbox/relay.h"

#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "adapters/kafka.h"
#include "outbox/commit_signal.h"
#include "outbox/relay_store.h"

namespace sigevents {

std::string DescribeStop(bool clean, const RelayStats& stats) {
  return "relay: stopped " + std::string(clean ? "cleanly" : "uncleanly") +
         "; delivered " + std::to_string(stats.delivered_total) + ", failed " +
         std::to_string(stats.failed_total) + ", reconciled " +
         std::to_string(stats.reconciled_total);
}

std::string_view RelayStateName(RelayState state) {
  switch (state) {
    case RelayState::kStarting:
      return "starting";
    case RelayState::kStandby:
      return "standby";
    case RelayState::kReconciling:
      return "reconciling";
    case RelayState::kConnected:
      return "connected";
    case RelayState::kUnreachable:
      return "unreachable";
    case RelayState::kStopped:
      return "stopped";
  }
  return "unknown";
}

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long a read-back may take before it is abandoned and retried.
constexpr milliseconds kReadBackTimeout{30000};
// How long to wait for brokers when fetching metadata, asking again every
// slice so that Stop() does not wait for the whole timeout.
constexpr milliseconds kMetadataTimeout{2000};
constexpr milliseconds kMetadataSlice{100};
constexpr milliseconds kStatsInterval{1000};
constexpr milliseconds kCheckpointInterval{1000};
constexpr milliseconds kRetentionInterval{10000};
// Retention examines windows of this many rows, a few windows a pass.
constexpr int kRetentionWindow = 2000;
constexpr int kRetentionWindowsPerPass = 10;

bool MatchesRoute(const std::string& pattern, const std::string& type) {
  if (!pattern.empty() && pattern.back() == '*') {
    return type.compare(0, pattern.size() - 1, pattern, 0,
                        pattern.size() - 1) == 0;
  }
  return pattern == type;
}

std::string SqliteErrorKind(const SQLite::Exception& e) {
  switch (e.getErrorCode()) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return "sqlite_busy";
    case SQLITE_FULL:
      return "sqlite_full";
    case SQLITE_READONLY:
      return "sqlite_readonly";
    default:
      return "sqlite_error";
  }
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown-host";
  return name;
}

class RelayImpl final : public Relay {
 public:
  explicit RelayImpl(RelayConfig config)
      : config_(std::move(config)),
        signal_(CommitSignal::ForFile(config_.db_path)),
        host_(HostName()),
        pid_(getpid()),
        random_(std::random_device{}()) {
    owner_ = host_ + ":" + std::to_string(pid_) + ":" +
             std::to_string(random_() % 1000000);
  }

  ~RelayImpl() override { Stop(milliseconds(0)); }

  // Opens the outbox and the producer, so that a bad configuration fails
  // here, in the caller's thread; then starts the relay thread.
  void Begin() {
    for (const auto& [pattern, topic] : config_.routes) {
      if (pattern.empty() || topic.empty()) {
        throw std::invalid_argument("relay route \"" + pattern + "=" + topic +
                                    "\": pattern and topic must not be "
                                    "empty");
      }
    }
    if (config_.default_topic.empty()) {
      throw std::invalid_argument("relay: the default topic is empty");
    }
    if (config_.backoff_initial.count() <= 0 ||
        config_.backoff_max < config_.backoff_initial) {
      throw std::invalid_argument(
          "relay: backoff_initial (" +
          std::to_string(config_.backoff_initial.count()) +
          " ms) must be positive and backoff_max (" +
          std::to_string(config_.backoff_max.count()) +
          " ms) at least as long, or errors are retried in a busy loop");
    }
    store_ = std::make_unique<RelayStore>(config_.db_path);
    producer_ = NewProducer();
    thread_ = std::thread([this] { Run(); });
  }

  bool Stop(milliseconds timeout) override {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (thread_.joinable()) {
      stop_deadline_ = Clock::now() + timeout;
      stop_requested_ = true;
      signal_.Notify();
      thread_.join();
    }
    return clean_stop_;
  }

  RelayStats stats() const override {
    std::lock_guard<std::mutex> lock(stats_mu_);
    return stats_;
  }

 private:
  // ---- The relay thread ----------------------------------------------------

  void Run() {
    while (!stop_requested_) {
      seen_generation_ = signal_.generation();
      step_failed_ = false;
      try {
        // Recovered: a whole pass ran, through sending, with no failure.
        if (Step() && !step_failed_ && failures_ > 0) {
          Log(LogLevel::kInfo, "relay: recovered after " +
                                   std::to_string(failures_) +
                                   " failed attempt(s)");
          failures_ = 0;
        }
      } catch (const SQLite::Exception& e) {
        Fail(SqliteErrorKind(e),
             "outbox database " + config_.db_path + ": " + e.what());
      } catch (const std::exception& e) {
        Fail("relay_error", e.what());
      }
    }
    Shutdown();
  }

  // One pass: take the lease, recover, record reports, send more. Returns
  // true when the pass got as far as sending.
  bool Step() {
    if (!holding_ && !TakeLease()) {
      SetState(RelayState::kStandby);
      Sleep(std::min(config_.poll_interval, config_.lease_duration / 4));
      return false;
    }
    if (!setup_done_ && !SetUp()) return false;
    if (std::string reason; producer_->Fatal(&reason)) {
      ReplaceProducer(reason);
      return false;
    }
    if (needs_reconcile_ && !Reconcile()) return false;
    if (Clock::now() >= next_heartbeat_ && !Renew()) return false;

    ServeReports();
    // New events go out before the reports are recorded, so that they do
    // not wait behind a write transaction.
    bool more = !episode_ && Fill();
    if (!outcomes_.empty() && !Record()) return false;
    if (episode_) {
      FinishEpisodeWhenDrained();
      return false;
    }
    Housekeeping(more);
    if (!more) Sleep(config_.poll_interval);
    return true;
  }

  bool TakeLease() {
    std::optional<LeaseInfo> before = store_->AcquireLease(
        owner_, host_, pid_, config_.lease_duration.count());
    if (!before) {
      UpdateLeaseOwner(store_->ReadLease().owner);
      return false;
    }
    holding_ = true;
    UpdateLeaseOwner(owner_);
    setup_done_ = false;
    needs_reconcile_ = !before->clean_stop;
    previous_heartbeat_ms_ = before->heartbeat_at_ms;
    next_heartbeat_ = Clock::now() + config_.lease_duration / 4;
    Log(LogLevel::kInfo,
        "relay: lease on " + config_.db_path + " taken by " + owner_ +
            (before->owner.empty() ? "" : " from " + before->owner) +
            (needs_reconcile_ ? "; the previous relay did not stop cleanly, "
                                "reading Kafka back before sending"
                              : ""));
    return true;
  }

  bool Renew() {
    if (!store_->Heartbeat(owner_)) {
      LoseLease();
      return false;
    }
    next_heartbeat_ = Clock::now() + config_.lease_duration / 4;
    return true;
  }

  // Another relay took the lease (this one stalled past its expiry). It
  // will read Kafka back, so what is in flight here is simply dropped.
  void LoseLease() {
    CountError("lease_lost");
    Log(LogLevel::kWarning, "relay: lease on " + config_.db_path +
                                " lost to another relay; standing by");
    producer_->FlushOrPurge(milliseconds(0));
    std::vector<DeliveryReport> dropped;
    producer_->Poll(&dropped);
    outcomes_.clear();
    holding_ = false;
    UpdateLeaseOwner("");
    episode_ = false;
    cursor_ = 0;
    read_needed_ = true;
  }

  // Checks the cluster and records where each partition starts, before
  // anything is sent. Needs a reachable broker.
  bool SetUp() {
    std::string cluster;
    AskBrokers([&](milliseconds timeout) {
      cluster = producer_->ClusterId(timeout);
      return !cluster.empty();
    });
    if (cluster.empty()) {
      SetState(RelayState::kUnreachable);
      Fail("kafka_unreachable", "no Kafka broker answered");
      return false;
    }
    std::string known = store_->ClusterId();
    if (known != cluster) {
      if (!known.empty()) {
        Log(LogLevel::kWarning, "relay: Kafka cluster changed from " + known +
                                    " to " + cluster +
                                    "; read-back checkpoints reset");
      }
      store_->SetClusterId(cluster);
    }
    if (!needs_reconcile_) {
      // A partition without a checkpoint has never been written by this
      // outbox, so reading back may start at its current end.
      std::map<TopicPartition, std::int64_t> checkpoints =
          store_->Checkpoints();
      std::set<TopicPartition> partitions;
      if (!KnownPartitions(checkpoints, &partitions)) return false;
      std::map<TopicPartition, std::int64_t> ends;
      for (const TopicPartition& partition : partitions) {
        if (checkpoints.count(partition) != 0) continue;
        std::int64_t low = 0, high = 0;
        if (!AskBrokers([&](milliseconds timeout) {
              return producer_->Watermarks(partition.first, partition.second,
                                           &low, &high, timeout);
            })) {
          Fail("kafka_unreachable", "cannot read the offsets of " +
                                        partition.first + "[" +
                                        std::to_string(partition.second) + "]");
          return false;
        }
        ends[partition] = high;
      }
      store_->AddMissingCheckpoints(ends);
    }
    setup_done_ = true;
    SetState(RelayState::kConnected);
    return true;
  }

  // Calls `ask(timeout)` with short timeouts while it times out, for at
  // most kMetadataTimeout in all. False when it never succeeded, when it
  // failed before its timeout (an answer, such as an error for the topic,
  // which asking again at once would only repeat), or when Stop() was
  // called meanwhile.
  template <typename Ask>
  bool AskBrokers(Ask ask) {
    Clock::time_point deadline = Clock::now() + kMetadataTimeout;
    for (;;) {
      Clock::time_point asked = Clock::now();
      milliseconds slice = std::max(
          milliseconds(1),
          std::min(kMetadataSlice,
                   std::chrono::duration_cast<milliseconds>(deadline - asked)));
      if (ask(slice)) return true;
      Clock::time_point now = Clock::now();
      if (now - asked < slice || stop_requested_ || now >= deadline) {
        return false;
      }
    }
  }

  // Every partition of every topic this relay may write, and every
  // partition it has a checkpoint for. False, with `partitions` partial,
  // when a topic's metadata could not be fetched: a read-back must not skip
  // a partition it does not know about.
  bool KnownPartitions(
      const std::map<TopicPartition, std::int64_t>& checkpoints,
      std::set<TopicPartition>* partitions) {
    std::set<std::string> topics = {config_.default_topic};
    for (const auto& route : config_.routes) topics.insert(route.second);
    for (const auto& checkpoint : checkpoints) {
      topics.insert(checkpoint.first.first);
      partitions->insert(checkpoint.first);
    }
    for (const std::string& topic : topics) {
      std::vector<std::int32_t> ids;
      if (!AskBrokers([&](milliseconds timeout) {
            ids.clear();
            return producer_->Partitions(topic, timeout, &ids);
          })) {
        Fail("kafka_unreachable", "no metadata for topic " + topic);
        return false;
      }
      for (std::int32_t id : ids) partitions->emplace(topic, id);
    }
    return true;
  }

  // Reads back what this outbox may have written since the last
  // acknowledged offsets and marks it delivered, so nothing is sent twice.
  bool Reconcile() {
    SetState(RelayState::kReconciling);
    std::int64_t settle_until =
        previous_heartbeat_ms_ + config_.settle_delay.count();
    std::int64_t wait_ms = settle_until - NowMillis();
    if (wait_ms > 0) {
      Sleep(milliseconds(std::min(wait_ms, config_.settle_delay.count())));
      if (stop_requested_) return false;
    }

    std::map<TopicPartition, std::int64_t> checkpoints = store_->Checkpoints();
    std::set<TopicPartition> partitions;
    if (!KnownPartitions(checkpoints, &partitions)) return false;
    std::map<TopicPartition, std::int64_t> from;
    for (const TopicPartition& partition : partitions) {
      auto it = checkpoints.find(partition);
      from[partition] = it == checkpoints.end() ? -1 : it->second;
    }
    ReadBackResult result = ReadBack(config_.kafka, store_->outbox_id(), from,
                                     kReadBackTimeout, &stop_requested_);
    if (!result.ok) {
      Fail("readback_failed", result.error);
      return false;
    }
    std::int64_t marked =
        store_->RecordFound(owner_, result.hits, result.read_to);
    if (marked < 0) {
      LoseLease();
      return false;
    }
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.reconciled_total += marked;
    }
    Log(LogLevel::kInfo,
        "relay: read back " + std::to_string(from.size()) +
            " partition(s): " + std::to_string(result.hits.size()) +
            " message(s) of this outbox found, " + std::to_string(marked) +
            " of them were still pending and are now marked delivered");
    needs_reconcile_ = false;
    cursor_ = 0;
    read_needed_ = true;
    SetState(RelayState::kConnected);
    return true;
  }

  // Turns delivery reports into row outcomes. A report that is not a
  // delivery or a refusal starts an episode: sending pauses until nothing
  // is in flight, then resumes from the first pending row, after a
  // read-back if some outcome is unknown.
  void ServeReports() {
    reports_.clear();
    producer_->Poll(&reports_);
    bool delivered = false;
    for (DeliveryReport& report : reports_) {
      RowOutcome outcome;
      outcome.seq = report.seq;
      outcome.topic = report.topic;
      switch (report.outcome) {
        case DeliveryReport::Outcome::kDelivered:
          outcome.kind = RowOutcome::Kind::kDelivered;
          outcome.partition = report.partition;
          outcome.offset = report.offset;
          delivered = true;
          break;
        case DeliveryReport::Outcome::kRefused:
          outcome.kind = RowOutcome::Kind::kFailed;
          outcome.error = "Kafka refused the event on topic " + report.topic +
                          ": " + report.error;
          CountError("kafka_refused");
          Log(LogLevel::kError, "relay: event seq " +
                                    std::to_string(report.seq) +
                                    " failed: " + outcome.error);
          break;
        case DeliveryReport::Outcome::kNotSent:
          outcome.kind = RowOutcome::Kind::kRetry;
          outcome.error = "not sent to " + report.topic + ": " + report.error;
          StartEpisode("kafka_not_sent", outcome.error);
          break;
        case DeliveryReport::Outcome::kUnknown:
          outcome.kind = RowOutcome::Kind::kRetry;
          outcome.error =
              "outcome unknown on " + report.topic + ": " + report.error;
          unknown_outcome_ = true;
          StartEpisode("kafka_unknown_outcome", outcome.error);
          break;
      }
      outcomes_.push_back(std::move(outcome));
    }
    if (delivered) {
      SetState(RelayState::kConnected);
    } else if (producer_->AllBrokersDown() &&
               state_ == RelayState::kConnected) {
      SetState(RelayState::kUnreachable);
      CountError("kafka_unreachable");
    }
  }

  bool Record() {
    if (config_.before_record_for_testing) {
      config_.before_record_for_testing(outcomes_.size());
    }
    if (!store_->RecordOutcomes(owner_, outcomes_)) {
      LoseLease();
      return false;
    }
    std::int64_t delivered = 0, failed = 0;
    for (const RowOutcome& outcome : outcomes_) {
      if (outcome.kind == RowOutcome::Kind::kDelivered) ++delivered;
      if (outcome.kind == RowOutcome::Kind::kFailed) ++failed;
    }
    outcomes_.clear();
    next_heartbeat_ = Clock::now() + config_.lease_duration / 4;
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.delivered_total += delivered;
    stats_.failed_total += failed;
    return true;
  }

  void StartEpisode(const std::string& kind, const std::string& error) {
    CountError(kind);
    if (!episode_) {
      Log(LogLevel::kWarning, "relay: pausing sends: " + error);
    }
    episode_ = true;
  }

  void FinishEpisodeWhenDrained() {
    if (producer_->InFlight() > 0) {
      Sleep(config_.poll_interval);  // reports wake it earlier
      return;
    }
    episode_ = false;
    cursor_ = 0;
    read_needed_ = true;
    if (unknown_outcome_) {
      unknown_outcome_ = false;
      needs_reconcile_ = true;
      previous_heartbeat_ms_ = NowMillis();
    }
    Sleep(NextBackoff());
  }

  // Hands the next pending rows to librdkafka. Returns true when more rows
  // may be waiting.
  bool Fill() {
    std::size_t in_flight = static_cast<std::size_t>(producer_->InFlight());
    if (in_flight >= config_.max_in_flight) return false;
    bool changed = store_->DataChanged();
    bool drained = in_flight == 0 && outcomes_.empty() && cursor_ != 0;
    if (!changed && !more_pending_ && !read_needed_ && !drained) return false;
    read_needed_ = false;
    // With nothing in flight and nothing unrecorded, every pending row is
    // waiting to be sent, including rows an operator put back below the
    // cursor; start from the first.
    if (in_flight == 0 && outcomes_.empty()) cursor_ = 0;

    std::size_t limit =
        std::min(config_.batch_size, config_.max_in_flight - in_flight);
    std::vector<PendingRow> rows = store_->ReadPending(cursor_, limit);
    for (PendingRow& row : rows) {
      KafkaMessage message = ToMessage(row);
      std::string error;
      ProduceResult result = producer_->Produce(message, &error);
      if (result == ProduceResult::kRetryLater) {
        // Keep the cursor before this row; order is kept by trying again
        // from here.
        Fail("kafka_not_sent", "event seq " + std::to_string(row.seq) +
                                   " not taken by the producer: " + error);
        more_pending_ = true;
        return false;
      }
      if (result == ProduceResult::kRefused) {
        RowOutcome outcome;
        outcome.seq = row.seq;
        outcome.kind = RowOutcome::Kind::kFailed;
        outcome.topic = message.topic;
        outcome.error = "Kafka client refused the event for topic " +
                        message.topic + ": " + error;
        CountError("kafka_refused");
        Log(LogLevel::kError, "relay: event seq " + std::to_string(row.seq) +
                                  " (" + row.type + ", id " + row.event_id +
                                  ") failed: " + outcome.error);
        outcomes_.push_back(std::move(outcome));
      }
      cursor_ = row.seq;
    }
    more_pending_ = rows.size() == limit;
    return more_pending_ || !outcomes_.empty();
  }

  // Takes the row's payload.
  KafkaMessage ToMessage(PendingRow& row) {
    KafkaMessage message;
    message.seq = row.seq;
    message.topic = TopicFor(row.type);
    message.key = row.key;
    message.headers = {{kOutboxHeader, store_->outbox_id()},
                       {kSeqHeader, std::to_string(row.seq)}};
    if (config_.content_mode == ContentMode::kStructured) {
      message.value = std::move(row.payload);
      message.headers.emplace_back("content-type", kStructuredContentType);
      return message;
    }
    // Binary mode: attributes in ce_ headers, the data as the value.
    boost::json::object envelope = boost::json::parse(row.payload).as_object();
    for (const char* attribute :
         {"id", "time", "type", "source", "specversion"}) {
      message.headers.emplace_back(
          std::string("ce_") + attribute,
          std::string(envelope.at(attribute).as_string()));
    }
    message.headers.emplace_back("content-type", "application/json");
    message.value = boost::json::serialize(envelope.at("data"));
    return message;
  }

  const std::string& TopicFor(const std::string& type) {
    auto it = topic_by_type_.find(type);
    if (it != topic_by_type_.end()) return it->second;
    std::string topic = config_.default_topic;
    for (const auto& [pattern, route_topic] : config_.routes) {
      if (MatchesRoute(pattern, type)) {
        topic = route_topic;
        break;
      }
    }
    return topic_by_type_.emplace(type, topic).first->second;
  }

  void ReplaceProducer(const std::string& reason) {
    CountError("kafka_fatal");
    Log(LogLevel::kError, "relay: Kafka producer failed (" + reason +
                              "); replacing it and reading back");
    producer_->FlushOrPurge(milliseconds(0));
    std::vector<DeliveryReport> dropped;
    producer_->Poll(&dropped);
    producer_ = NewProducer();
    outcomes_.clear();
    episode_ = false;
    needs_reconcile_ = true;
    previous_heartbeat_ms_ = NowMillis();
    cursor_ = 0;
    read_needed_ = true;
    Sleep(NextBackoff());
  }

  std::unique_ptr<KafkaProducer> NewProducer() {
    CommitSignal* signal = &signal_;
    return KafkaProducer::Create(
        config_.kafka, [signal] { signal->Notify(); }, config_.log);
  }

  // Checkpoints, retention and statistics, each at its own interval; the
  // costly ones wait while a backlog drains (`draining`).
  void Housekeeping(bool draining) {
    Clock::time_point now = Clock::now();
    if (now >= next_checkpoint_) {
      next_checkpoint_ = now + kCheckpointInterval;
      store_->Checkpoint();
    }
    if (draining) return;
    if (config_.retention.count() > 0 && now >= next_retention_) {
      // Short retentions (tests, small disks) are honoured within half
      // their length.
      next_retention_ =
          now + std::min(kRetentionInterval,
                         std::max(milliseconds(100), config_.retention / 2));
      std::int64_t before = NowMillis() - config_.retention.count();
      std::int64_t purged = 0;
      for (int i = 0; i < kRetentionWindowsPerPass; ++i) {
        purged += store_->PurgeDelivered(before, purge_cursor_,
                                         kRetentionWindow, &purge_cursor_);
        if (purge_cursor_ == 0) break;
      }
      if (purged > 0) {
        std::lock_guard<std::mutex> lock(stats_mu_);
        stats_.purged_total += purged;
      }
    }
    if (now >= next_stats_) {
      next_stats_ = now + kStatsInterval;
      RelayStore::Counts counts = store_->Count();
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.pending = counts.pending;
      stats_.failed = counts.failed;
      stats_.oldest_pending_age_s =
          counts.oldest_pending_created_ms == 0
              ? 0
              : (NowMillis() - counts.oldest_pending_created_ms) / 1000.0;
      stats_.in_flight = producer_->InFlight();
    }
  }

  // Stop(): waits for what is in flight until the deadline, records it and
  // releases the lease, saying whether the stop was clean.
  void Shutdown() {
    bool clean = false;
    if (holding_) {
      try {
        milliseconds left =
            std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(
                                          stop_deadline_ - Clock::now()));
        producer_->FlushOrPurge(left);
        ServeReports();
        // A relay that still owes a read-back (it took over after an unclean
        // stop and was stopped before reading back, or an outcome was
        // unknown) must not hand the lease on as clean: the next relay would
        // skip the read-back and send acknowledged messages again.
        clean = !needs_reconcile_ && !unknown_outcome_ &&
                producer_->InFlight() == 0;
        if (!outcomes_.empty() && !Record()) clean = false;
        if (holding_) store_->ReleaseLease(owner_, clean);
      } catch (const std::exception& e) {
        clean = false;
        Log(LogLevel::kError,
            std::string("relay: stopping uncleanly: ") + e.what());
      }
    }
    producer_.reset();
    clean_stop_ = clean;
    holding_ = false;
    UpdateLeaseOwner("");
    SetState(RelayState::kStopped);
  }

  // ---- Helpers ----------------------------------------------------------

  // Waits for a commit, a Kafka event, Stop() or the timeout.
  void Sleep(milliseconds timeout) {
    if (stop_requested_) return;
    signal_.WaitFor(seen_generation_, timeout);
  }

  milliseconds NextBackoff() {
    std::int64_t cap = config_.backoff_max.count();
    std::int64_t delay = config_.backoff_initial.count();
    for (int i = 0; i < backoff_step_ && delay < cap; ++i) delay *= 2;
    delay = std::min(delay, cap);
    ++backoff_step_;
    // Full jitter on the upper half: spreads relays that failed together.
    std::uniform_int_distribution<std::int64_t> jitter(delay / 2, delay);
    return milliseconds(jitter(random_));
  }

  // An error to retry after a backoff. Logged when it starts, and when the
  // relay recovers.
  void Fail(const std::string& kind, const std::string& message) {
    CountError(kind);
    if (failures_ == 0 || kind != last_failure_kind_) {
      Log(LogLevel::kWarning, "relay: " + message + "; retrying with backoff");
    }
    ++failures_;
    step_failed_ = true;
    last_failure_kind_ = kind;
    Sleep(NextBackoff());
  }

  void CountError(const std::string& kind) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.errors_by_kind[kind];
  }

  void SetState(RelayState state) {
    if (state == RelayState::kConnected) backoff_step_ = 0;
    if (state == state_) return;
    Log(state == RelayState::kUnreachable ? LogLevel::kWarning
                                          : LogLevel::kInfo,
        "relay: " + std::string(RelayStateName(state_)) + " -> " +
            std::string(RelayStateName(state)));
    state_ = state;
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.state = state;
  }

  void UpdateLeaseOwner(const std::string& owner) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.lease_owner = owner;
    stats_.lease_held = holding_;
  }

  void Log(LogLevel level, const std::string& message) {
    config_.log(level, message);
  }

  RelayConfig config_;
  CommitSignal& signal_;
  std::string host_;
  pid_t pid_;
  std::string owner_;

  // Owned by the relay thread once it runs.
  std::unique_ptr<RelayStore> store_;
  std::unique_ptr<KafkaProducer> producer_;
  std::mt19937_64 random_;
  std::uint64_t seen_generation_ = 0;
  RelayState state_ = RelayState::kStarting;
  bool holding_ = false;
  bool setup_done_ = false;
  bool needs_reconcile_ = false;
  bool episode_ = false;
  bool unknown_outcome_ = false;
  bool more_pending_ = false;
  bool read_needed_ = true;  // read pending rows even if nothing committed
  std::int64_t previous_heartbeat_ms_ = 0;
  std::int64_t cursor_ = 0;  // the last seq handed to the producer
  std::vector<DeliveryReport> reports_;
  std::vector<RowOutcome> outcomes_;  // reports not yet recorded
  std::unordered_map<std::string, std::string> topic_by_type_;
  int backoff_step_ = 0;
  int failures_ = 0;          // in a row, since the last full pass
  bool step_failed_ = false;  // the current pass called Fail()
  std::string last_failure_kind_;
  Clock::time_point next_heartbeat_;
  Clock::time_point next_retention_;
  Clock::time_point next_checkpoint_;
  std::int64_t purge_cursor_ = 0;  // where retention goes on from
  Clock::time_point next_stats_;

  // Stop() and the thread.
  std::mutex stop_mu_;
  std::thread thread_;
  std::atomic<bool> stop_requested_{false};
  Clock::time_point stop_deadline_;
  bool clean_stop_ = false;  // written by the thread before it ends

  mutable std::mutex stats_mu_;
  RelayStats stats_;  // guarded by stats_mu_
};

}  // namespace

std::unique_ptr<Relay> Relay::Start(RelayConfig config) {
  auto relay = std::make_unique<RelayImpl>(std::move(config));
  relay->Begin();
  return relay;
}

}  // namespace sigevents
