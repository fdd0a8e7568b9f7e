// nucleusctl's inspection connections: the connections, their requests
// and replies, the monitor stream (inspector.h).
#include "inspector.h"

#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "log.h"

namespace nucleus::daemon {

namespace {

using nlohmann::json;

// Inspection connections of non-operators, all uids together (each uid
// also has limits.per_uid.control_connections).
constexpr size_t kMaxInspections = 64;
constexpr size_t kMaxRequestBytes = 4096;
constexpr uint64_t kDefaultPage = 100;
constexpr uint64_t kMaxPage = 500;
// Work is counted in units of about one byte of JSON built (the escaping
// of a program's strings, the bulk of a large reply, is one unit a byte).
// A uid's slice of a round: small enough that a turn with a few uids stays
// well under a millisecond.
constexpr uint64_t kSliceUnits = 16384;
// Parsing a request (at most kMaxRequestBytes) and starting its reply.
constexpr uint64_t kRequestCost = 1024;
// Building an entry's fields (a JSON object of some twenty members, its
// text) beyond the bytes of that text.
constexpr uint64_t kEntryCost = 2048;
// Replies' memory kept for the next pages (Inspector::spare_texts_).
constexpr size_t kSpareTexts = 4;
// Walking one ancestor (visible_to) or one buffer of an inbox.
constexpr uint64_t kStepCost = InspectionReply::kVisitCost;
constexpr size_t kMonitorPacketBytes = size_t{32} * 1024;
constexpr int kSendBuffer = 1 << 20;

const char *state_name(wire::ProcessState s) {
  switch (s) {
    case wire::ProcessState::kCreated: return "created";
    case wire::ProcessState::kRunning: return "running";
    case wire::ProcessState::kStopping: return "stopping";
    case wire::ProcessState::kStopped: return "stopped";
    case wire::ProcessState::kExited: return "exited";
  }
  return "unknown";
}

const char *device_kind_name(wire::DeviceKind k) {
  switch (k) {
    case wire::DeviceKind::kClock: return "clock";
    case wire::DeviceKind::kConsole: return "console";
    case wire::DeviceKind::kDisk: return "disk";
    case wire::DeviceKind::kNull: return "null";
  }
  return "unknown";
}

json claims_json(const Claims &c) {
  return json{{"buffers", c.buffers},
              {"processes", c.processes},
              {"memory_bytes", c.memory},
              {"devices", c.devices},
              {"data_bytes", c.data_bytes}};
}

// JSON text for a client. Strings that are not UTF-8 (a program's path or
// argument, a file name) are sent with U+FFFD in place of the bad bytes:
// nlohmann's default would throw, and no exception may leave the loop.
std::string json_text(const json &j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string hex(uint64_t v) {
  char text[24];
  std::snprintf(text, sizeof(text), "0x%016llx", static_cast<unsigned long long>(v));
  return text;
}

json error_reply(int err, const std::string &message) {
  return json{{"ok", false}, {"errno", err}, {"error", message}};
}

}  // namespace

// The table's entries the asker may see, by index: the processes page.
class Inspector::ProcessesSource final : public InspectionSource {
 public:
  ProcessesSource(Inspector &inspector, const Inspection &asker) : in_(inspector), asker_(asker) {}
  uint64_t size() const override { return in_.core_.processes().capacity(); }
  bool occupied(uint64_t i) const override {
    return in_.core_.processes().live(static_cast<uint32_t>(i));
  }
  bool entry(uint64_t i, InspectionEntry *out, uint64_t *cost) override {
    out->clear();
    auto id = static_cast<uint32_t>(i);
    if (!in_.core_.processes().live(id)) return false;
    const Process &p = in_.core_.processes().at(id);
    if (p.hidden || !in_.visible_to(asker_, id, cost)) return false;
    out->head = json_text(in_.process_json(id, cost));
    if (p.is_device()) return true;
    // A copy: the page writes it over later turns, whatever becomes of
    // the entry meanwhile.
    out->has_program = true;
    out->strings = p.program.path;
    out->ends.push_back(out->strings.size());
    out->strings += p.program.cwd;
    out->ends.push_back(out->strings.size());
    for (const std::string &arg : p.program.argv) {
      out->strings += arg;
      out->ends.push_back(out->strings.size());
    }
    *cost += p.program.argv.size();
    return true;
  }

 private:
  Inspector &in_;
  const Inspection &asker_;
};

// The devices, by their place in the Core's list: the devices page.
class Inspector::DevicesSource final : public InspectionSource {
 public:
  DevicesSource(Inspector &inspector, const Inspection & /*asker: every device is shown*/)
      : in_(inspector) {}
  uint64_t size() const override { return in_.core_.devices().size(); }
  bool occupied(uint64_t i) const override { return i < size(); }
  bool entry(uint64_t i, InspectionEntry *out, uint64_t *cost) override {
    out->clear();
    if (i >= size()) return false;
    uint32_t id = in_.core_.devices()[i];
    const Process &p = in_.core_.processes().at(id);
    json d = in_.process_json(id, cost);
    d["owner"] = p.parent == kNone ? wire::kNucleusName : in_.core_.processes().at(p.parent).name;
    d.erase("parent");
    if (std::optional<DeviceGeometry> geometry = in_.view_.devices.geometry(id)) {
      d["block_size"] = geometry->block_size;
    }
    out->head = json_text(d);
    return true;
  }

 private:
  Inspector &in_;
};

Inspector::Inspector(Loop &loop, Core &core, const Config &config, const Policy &policy, View view)
    : loop_(loop),
      core_(core),
      config_(config),
      policy_(policy),
      view_(view),
      packet_(kMaxRequestBytes + 1) {
  loop_.route(Kind::kInspect, [this](const Completion &c) {
    if (c.index < inspections_.size() && inspections_[c.index].live &&
        inspections_[c.index].generation == c.generation) {
      on_readable(c.index, c.result);
    }
  });
}

void Inspector::begin(sys::UniqueFd socket, std::string_view first, const ucred &cred) {
  bool op = policy_.is_operator(cred.uid, cred.gid);
  auto refuse = [&](int err, const std::string &why) {
    std::string reply = json_text(error_reply(err, why));
    send(socket.get(), reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  };
  if (!policy_.may_attach(cred.uid, cred.gid) && !op) {
    log::info("control connection refused (pid {} uid {}): not allowed to attach", cred.pid,
              cred.uid);
    refuse(EACCES, "uid " + std::to_string(cred.uid) + " may not use this nucleus (attach.uids)");
    return;
  }
  // Operators are bounded by neither count, so that nucleusctl of the root
  // and of operators always gets in.
  if (!op) {
    size_t mine = 0, all = 0;
    for (const Inspection &c : inspections_) {
      if (!c.live || c.op) continue;
      ++all;
      mine += c.uid == cred.uid ? 1 : 0;
    }
    int64_t now = sys::monotonic_ns();
    auto interval = static_cast<int64_t>(config_.limits.log_interval_ms) * 1000000;
    if (mine >= config_.limits.uid_inspection_connections) {
      refused_log_.warn(now, interval,
                        "control connection refused (pid {} uid {}): it has {} open "
                        "(limits.per_uid.control_connections)",
                        cred.pid, cred.uid, mine);
      refuse(EUSERS, "uid " + std::to_string(cred.uid) + " has " + std::to_string(mine) +
                         " control connections open (limits.per_uid.control_connections)");
      return;
    }
    if (all >= kMaxInspections) {
      refused_log_.warn(now, interval, "control connection refused (pid {} uid {}): {} are open",
                        cred.pid, cred.uid, all);
      refuse(EAGAIN, "too many control connections open; try again later");
      return;
    }
  }
  int size = kSendBuffer;
  setsockopt(socket.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  uint32_t index = 0;
  if (!free_inspections_.empty()) {
    index = free_inspections_.back();
    free_inspections_.pop_back();
  } else {
    index = static_cast<uint32_t>(inspections_.size());
    inspections_.emplace_back();
  }
  Inspection &c = inspections_[index];
  c.live = true;
  ++c.generation;
  c.socket = std::move(socket);
  c.uid = cred.uid;
  c.gid = cred.gid;
  c.pid = cred.pid;
  c.op = op;
  c.monitor = false;
  c.dropped = 0;
  c.queued = false;
  c.reply.reset();
  c.turn = 0;
  c.requests = 0;
  // Its first request is in hand; the reply is built in the turns'
  // slices, as every other.
  begin_reply(index, first);
  enqueue(index);
}

void Inspector::arm(uint32_t index) {
  Inspection &c = inspections_[index];
  io_uring_sqe *sqe = loop_.sqe();
  io_uring_prep_poll_add(sqe, c.socket.get(), POLLIN | POLLRDHUP);
  Loop::set_tag(sqe, Kind::kInspect, index, c.generation);
}

void Inspector::enqueue(uint32_t index) {
  Inspection &c = inspections_[index];
  if (c.queued) return;
  c.queued = true;
  queue_.push({index, c.generation, c.uid});
}

void Inspector::on_readable(uint32_t index, int result) {
  if (result < 0 || (result & (POLLHUP | POLLERR | POLLRDHUP)) != 0) {
    if (!(result > 0 && (result & POLLIN) != 0)) {
      close_connection(index);
      return;
    }
  }
  // Its requests are read in serve_turn, one at a time, within the turn's
  // budget; no poll is armed until it has none left.
  enqueue(index);
}

void Inspector::serve_turn() {
  ++turn_;
  queue_.turn(config_.limits.turn_control_bytes, kSliceUnits,
              [this](const SliceQueue::Member &m, uint64_t slice) {
                if (m.index >= inspections_.size() || !inspections_[m.index].live ||
                    inspections_[m.index].generation != m.generation) {
                  return SliceQueue::Served{0, false};  // closed meanwhile
                }
                return serve_slice(m.index, slice);
              });
}

SliceQueue::Served Inspector::serve_slice(uint32_t index, uint64_t budget) {
  Inspection &c = inspections_[index];
  if (c.turn != turn_) {
    c.turn = turn_;
    c.requests = 0;
  }
  uint64_t spent = 0;
  while (spent < budget) {
    if (!c.reply) {
      // Its next request: at most requests_per_turn of them a turn, so that
      // cheap requests sent back to back do not keep it here either.
      if (c.requests >= config_.limits.connection_requests_per_turn) return {spent, true};
      ssize_t n = recv(c.socket.get(), packet_.data(), packet_.size(), MSG_DONTWAIT | MSG_TRUNC);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        c.queued = false;
        arm(index);
        return {spent, false};
      }
      if (n <= 0) {
        close_connection(index);
        return {spent, false};
      }
      ++c.requests;
      if (static_cast<size_t>(n) > kMaxRequestBytes) {
        c.reply = InspectionReply::whole(json_text(error_reply(
            EMSGSIZE, "request longer than " + std::to_string(kMaxRequestBytes) + " bytes")));
        spent += kRequestCost;
      } else {
        spent += begin_reply(index, std::string_view(packet_.data(), static_cast<size_t>(n)));
      }
    }
    if (!c.reply->complete()) {
      try {
        if (c.listing == Listing::kProcesses) {
          ProcessesSource source(*this, c);
          spent += c.reply->advance(source, budget - std::min(spent, budget));
        } else {
          DevicesSource source(*this, c);
          spent += c.reply->advance(source, budget - std::min(spent, budget));
        }
      } catch (const std::exception &e) {
        // A reply must never take the loop down (an allocation that fails).
        log::warn("control connection (pid {}): reply failed: {}", c.pid, e.what());
        c.reply = InspectionReply::whole(json_text(error_reply(EPROTO, "request failed")));
      }
    }
    if (!c.reply->complete()) break;  // the slice is spent: on next round
    std::string text = c.reply->take_text();
    c.reply.reset();
    // Sending copies the text into the socket: a unit a byte, as writing it.
    spent += text.size();
    send_reply(index, text);
    if (spare_texts_.size() < kSpareTexts) spare_texts_.push_back(std::move(text));
    if (!c.live) return {spent, false};
  }
  return {spent, true};
}

void Inspector::close_connection(uint32_t index) {
  Inspection &c = inspections_[index];
  if (!c.live) return;
  c.live = false;
  c.reply.reset();  // what it was building goes with it (its queue entry is stale now)
  // The poll in flight holds the file open: shut it down so that the
  // client sees the end now (the poll completes for a gone generation).
  ::shutdown(c.socket.get(), SHUT_RDWR);
  c.socket.reset();
  free_inspections_.push_back(index);
  if (c.monitor) {
    c.monitor = false;
    bool any = std::any_of(inspections_.begin(), inspections_.end(),
                           [](const Inspection &o) { return o.live && o.monitor; });
    if (!any) {
      core_.set_tracing(false);  // drops the events kept
    }
  }
}

void Inspector::send_reply(uint32_t index, const std::string &text) {
  Inspection &c = inspections_[index];
  ssize_t n = send(c.socket.get(), text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n != static_cast<ssize_t>(text.size())) {
    // It does not read its replies (or the reply does not fit): it is
    // closed rather than let it hold nucleusd's memory.
    log::info("control connection (pid {}): reply not sent ({}); closed", c.pid,
              n < 0 ? std::strerror(errno) : "short");
    close_connection(index);
  }
}

uint64_t Inspector::begin_reply(uint32_t index, std::string_view text) {
  Inspection &c = inspections_[index];
  auto whole = [&](const json &reply) { c.reply = InspectionReply::whole(json_text(reply)); };
  // A reply built from client text must never take the loop down: what the
  // checks miss is answered as an error, not thrown on.
  try {
    json request = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    auto it = request.is_object() ? request.find("op") : request.end();
    if (request.is_discarded() || !request.is_object()) {
      whole(error_reply(EPROTO, "a request is one JSON object"));
    } else if (it == request.end() || !it->is_string()) {
      whole(error_reply(EPROTO, "request without \"op\""));
    } else if (const auto &op = it->get_ref<const std::string &>(); op == "status") {
      whole(status_json(c));
    } else if (op == "processes" || op == "devices") {
      bool devices = op == "devices";
      // A devices reply had no pages before: by default one page holds
      // them all (as many as fit its bytes).
      uint64_t from = 0, limit = devices ? UINT64_MAX : kDefaultPage;
      if (std::optional<json> refused = page_bounds(request, &from, &limit)) {
        whole(*refused);
      } else {
        c.listing = devices ? Listing::kDevices : Listing::kProcesses;
        std::string storage;
        if (!spare_texts_.empty()) {
          storage = std::move(spare_texts_.back());
          spare_texts_.pop_back();
        }
        c.reply = InspectionReply::page(
            op, from, limit, config_.limits.connection_control_reply_bytes, std::move(storage));
      }
    } else if (op == "monitor") {
      if (!c.op) {
        whole(error_reply(EACCES, "only an operator may monitor (operators in the configuration)"));
      } else {
        c.monitor = true;
        core_.set_tracing(true);
        whole(json{{"ok", true}});
        log::info("control connection (pid {} uid {}) monitors messages", c.pid, c.uid);
      }
    } else {
      whole(error_reply(EINVAL, "unknown op \"" + op + "\""));
    }
  } catch (const std::exception &e) {
    log::warn("control connection (pid {}): request failed: {}", c.pid, e.what());
    whole(error_reply(EPROTO, "request failed"));
  }
  uint64_t cost = kRequestCost + text.size();
  if (c.reply->complete()) cost += c.reply->text().size();
  return cost;
}

std::optional<json> Inspector::page_bounds(const json &request, uint64_t *from,
                                           uint64_t *limit) const {
  if (auto it = request.find("from"); it != request.end()) {
    if (!it->is_number_unsigned()) return error_reply(EINVAL, "\"from\": expected an index");
    *from = it->get<uint64_t>();
  }
  if (auto it = request.find("limit"); it != request.end()) {
    if (!it->is_number_unsigned() || it->get<uint64_t>() == 0 || it->get<uint64_t>() > kMaxPage) {
      return error_reply(EINVAL, "\"limit\": expected 1 .. " + std::to_string(kMaxPage));
    }
    *limit = it->get<uint64_t>();
  }
  return std::nullopt;
}

json Inspector::status_json(const Inspection &c) const {
  const Pool &pool = core_.pool();
  uint64_t in_use = pool.in_use();
  uint64_t attached = view_.connections.count();
  return json{
      {"ok", true},
      {"version", NUCLEUS_VERSION},
      {"abi", wire::kAbiVersion},
      {"pid", getpid()},
      {"uptime_s", static_cast<double>(sys::monotonic_ns() - view_.started_ns) / 1e9},
      {"socket", view_.socket_path},
      {"socket_activated", view_.socket_activated},
      {"transport",
       {{"doorbell", view_.connections.futex_doorbells() ? "futex" : "eventfd"},
        {"control",
         view_.programs.subtree().mode() == Subtree::Mode::kCgroup ? "cgroup" : "signals"}}},
      {"event_loop",
       {{"poll", config_.poll.mode == PollMode::kAdaptive ? "adaptive"
                 : config_.poll.mode == PollMode::kFixed  ? "fixed"
                                                          : "off"},
        {"poll_window_ns", view_.connections.poll().window_ns()},
        {"polled_channels", view_.connections.active_count()},
        {"turnarounds", view_.connections.poll().samples()},
        {"polled_ns_last_second", view_.connections.poll().polled_last_second_ns()},
        {"poll_cpu_percent", config_.poll.cpu_percent},
        {"defer_taskrun", loop_.deferred_taskrun()}}},
      {"pool",
       {{"buffers", pool.size()},
        {"in_use", in_use},
        {"unowned", pool.free_count()},
        {"held", pool.size() - pool.free_count() - config_.notice_buffers},
        {"notice_buffers", config_.notice_buffers},
        {"notice_free", core_.notice_free()}}},
      {"processes",
       {{"count", core_.processes().count()},
        {"attached", attached},
        {"max", config_.max_processes},
        {"root_children", core_.children_of(kNone).size()}}},
      {"devices", core_.devices().size()},
      {"device_io",
       {{"as_namer", view_.devices.io_as_namer()},
        {"credentials", view_.devices.namer_credentials()}}},
      {"you", {{"uid", c.uid}, {"operator", c.op}}},
  };
}

bool Inspector::visible_to(const Inspection &c, uint32_t id, uint64_t *cost) const {
  if (c.op) return true;
  // The processes a uid owns: those it attached and what they (and the
  // operator, for it) created under them.
  for (uint32_t i = id; i != kNone; i = core_.processes().at(i).parent) {
    *cost += kStepCost;
    if (core_.processes().at(i).uid == c.uid) return true;
  }
  return false;
}

const std::string &Inspector::user_name(uint32_t uid) {
  if (auto it = user_names_.find(uid); it != user_names_.end()) return it->second;
  // Bounded by the uids that own entries; forgotten whole if it ever grows
  // past a sane size.
  if (user_names_.size() >= 4096) user_names_.clear();
  passwd pw{};
  passwd *found = nullptr;
  char buf[4096];
  std::string name = getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found != nullptr
                         ? std::string(pw.pw_name)
                         : std::to_string(uid);  // its number when the database has none
  return user_names_.emplace(uid, std::move(name)).first->second;
}

json Inspector::process_json(uint32_t id, uint64_t *cost) {
  const Process &p = core_.processes().at(id);
  const Pool &pool = core_.pool();
  uint64_t out = 0;
  for (uint32_t index : p.slots) out += pool.at(index).state != BufferState::kFree ? 1 : 0;
  uint64_t queued = 0, received = 0;
  for (uint32_t i = p.inbox_head; i != kNone; i = pool.at(i).inbox_next) {
    (pool.at(i).state == BufferState::kReceived ? received : queued) += 1;
  }
  *cost += kEntryCost + p.slots.size() + (queued + received) * kStepCost;
  json j{{"name", p.name},
         {"parent", p.parent == kNone ? "" : core_.processes().at(p.parent).name},
         {"kind", p.is_device() ? "device" : "internal"},
         {"uid", p.uid},
         {"gid", p.gid},
         {"user", user_name(p.uid)},
         {"buffers", {{"held", p.slots.size()}, {"out", out}}},
         {"queued", queued},
         {"received", received}};
  if (p.is_device()) {
    j["device"] = device_kind_name(p.device_kind);
    j["reserved_by"] = p.reserver == kNone ? "" : core_.processes().at(p.reserver).name;
    return j;
  }
  j["origin"] = p.origin == Origin::kSocket ? "socket" : "nucleus";
  j["state"] = state_name(core_.state(id));
  j["attached"] = p.attached;
  // A program that attached by itself: the pid its socket gave.
  j["pid"] = p.pid != 0 ? p.pid : static_cast<int32_t>(view_.connections.pid(id));
  // "program" ({"path", "cwd", "argv"}) is the page's to write, a slice at a time.
  j["claims"] = {{"given", claims_json(p.account.given())},
                 {"lent", claims_json(p.account.lent())}};
  j["children"] = p.children.size();
  j["swapping"] = p.swap_candidate != kNone;
  if (p.exit_kind != wire::ExitKind::kNone) {
    j["exit"] = {{"kind", p.exit_kind == wire::ExitKind::kCode ? "code" : "signal"},
                 {"value", p.exit_value}};
  }
  return j;
}

void Inspector::publish_trace() {
  if (core_.trace().empty() && core_.trace_dropped() == 0) return;
  Core::TraceBatch taken = core_.take_trace();
  const std::vector<TraceEvent> &events = taken.events;
  uint64_t &dropped = taken.dropped;
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  int64_t t = now.tv_sec * 1000000000LL + now.tv_nsec;
  std::vector<std::string> packets;
  json batch = json::array();
  size_t bytes = 0;
  auto flush = [&] {
    if (batch.empty() && dropped == 0) return;
    json packet{{"events", std::move(batch)}};
    if (dropped != 0) packet["dropped"] = dropped;
    dropped = 0;
    packets.push_back(json_text(packet));
    batch = json::array();
    bytes = 0;
  };
  for (const TraceEvent &e : events) {
    json j{{"time_ns", t},
           {"event", e.kind == TraceKind::kMessage  ? "message"
                     : e.kind == TraceKind::kRegret ? "regret"
                                                    : "answer"},
           {"from", e.from},
           {"to", e.to},
           {"buffer", hex(e.handle)}};
    if (e.kind == TraceKind::kAnswer) j["result"] = e.result;
    bytes += 128;
    batch.push_back(std::move(j));
    if (bytes >= kMonitorPacketBytes) flush();
  }
  flush();
  for (uint32_t index = 0; index < inspections_.size(); ++index) {
    Inspection &c = inspections_[index];
    if (!c.live || !c.monitor) continue;
    for (const std::string &p : packets) {
      // A monitor that does not keep up loses events, never nucleusd's
      // time: they are counted and it is told.
      if (send(c.socket.get(), p.data(), p.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        if (errno != EAGAIN) {
          close_connection(index);
          break;
        }
        c.dropped += 1;
      } else if (c.dropped != 0) {
        std::string note =
            json_text(json{{"events", json::array()}, {"dropped_packets", c.dropped}});
        if (send(c.socket.get(), note.data(), note.size(), MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
          c.dropped = 0;
        }
      }
    }
  }
}

void Inspector::operators_changed() {
  user_names_.clear();  // the user database may have changed with it
  for (uint32_t i = 0; i < inspections_.size(); ++i) {
    Inspection &c = inspections_[i];
    if (!c.live) continue;
    c.op = policy_.is_operator(c.uid, c.gid);
    if (c.monitor && !c.op) {
      log::info("control connection (pid {} uid {}) no longer an operator: monitor closed", c.pid,
                c.uid);
      close_connection(i);
    }
  }
}

void Inspector::close_all() {
  for (Inspection &c : inspections_) c.socket.reset();
}

}  // namespace nucleus::daemon
