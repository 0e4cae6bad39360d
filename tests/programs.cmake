# ctest checks of the lab programs, conclab-bench and scripts/report, driven
# by tests/check.py. Every check runs a program and asserts on what it prints
# and how it exits.
set(CHECK ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/check.py)
set(BIN ${CMAKE_RUNTIME_OUTPUT_DIRECTORY})
set(LABS ${PROJECT_SOURCE_DIR}/labs)

# conclab_check(<name> <check.py arguments>...)
function(conclab_check name)
  add_test(NAME ${name} COMMAND ${CHECK} ${ARGN})
  set_tests_properties(${name} PROPERTIES TIMEOUT 180)
endfunction()

# Lab 01: the seed's demo with 100 ms sleeps. Serial needs 5 x 100 ms at
# least; threaded overlaps them (the bound is loose for a noisy 2-core machine).
foreach(lang cpp python)
  if(lang STREQUAL cpp)
    set(serial ${BIN}/threads-serial)
    set(threaded ${BIN}/threads-threaded)
  else()
    set(serial ${Python3_EXECUTABLE} ${LABS}/01-threads-speedup/python/serial.py)
    set(threaded ${Python3_EXECUTABLE} ${LABS}/01-threads-speedup/python/threaded.py)
  endif()
  conclab_check(lab01.${lang}.serial run --expect model=serial --expect tasks=5 --expect sleep_ms=100
                --min elapsed_s=0.5 --count worker=5 -- ${serial} --tasks 5 --sleep-ms 100)
  conclab_check(lab01.${lang}.threaded run --expect model=threaded --expect tasks=5 --expect sleep_ms=100
                --min elapsed_s=0.1 --max elapsed_s=0.35 --count worker=5 -- ${threaded} --tasks 5 --sleep-ms 100)
  conclab_check(lab01.${lang}.serial.bad-args bad-args --worker-flags -- ${serial})
  conclab_check(lab01.${lang}.threaded.bad-args bad-args --worker-flags -- ${threaded})
endforeach()

# conclab-bench and its Python peers: a tiny run writes the rows scripts/report reads.
if(CONCLAB_BUILD_BENCH)
  set(smoke ${CMAKE_CURRENT_BINARY_DIR}/bench-smoke)
  file(MAKE_DIRECTORY ${smoke})
  add_test(NAME bench.cpp.smoke
           COMMAND ${BIN}/conclab-bench --cases 2x5,3x2 --fanout-cases 5x0,20x20 --fanout-connections 100
                   --benchmark_min_time=0.01 --repetitions 2
                   --benchmark_out=${smoke}/cpp.json --benchmark_out_format=json)
  add_test(NAME bench.python.smoke
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/bench/python/bench_workers.py
                   --cases 2x5,3x2 --min-time 0.01 --repetitions 2 --out ${smoke}/python.json)
  set_tests_properties(bench.cpp.smoke PROPERTIES FIXTURES_SETUP bench_cpp TIMEOUT 180)
  set_tests_properties(bench.python.smoke PROPERTIES FIXTURES_SETUP bench_python TIMEOUT 180)
  conclab_check(bench.cpp.rows bench-json ${smoke}/cpp.json
                workers/serial/tasks:2/sleep_ms:5/real_time workers/threaded/tasks:3/sleep_ms:2/real_time
                workers/process-pool/tasks:2/sleep_ms:5/real_time workers/shared-memory/tasks:3/sleep_ms:2/real_time
                micro/thread-create-join/real_time micro/raw-thread-create-join/real_time micro/pool-apply/real_time
                micro/fork-wait/spin:off/real_time micro/pool-apply/spin:off/real_time)
  conclab_check(bench.python.rows bench-json ${smoke}/python.json
                python/workers/serial/tasks:2/sleep_ms:5 python/workers/threaded/tasks:3/sleep_ms:2
                python/workers/process-pool/tasks:2/sleep_ms:5 python/workers/shared-memory/tasks:3/sleep_ms:2
                python/micro/thread-create-join python/micro/raw-thread-create-join python/micro/pool-apply)
  set_tests_properties(bench.cpp.rows PROPERTIES FIXTURES_REQUIRED bench_cpp)
  set_tests_properties(bench.python.rows PROPERTIES FIXTURES_REQUIRED bench_python)
  conclab_check(bench.report-of-smoke-run report-of ${PROJECT_SOURCE_DIR}/scripts/report ${smoke})
  set_tests_properties(bench.report-of-smoke-run PROPERTIES FIXTURES_REQUIRED "bench_cpp;bench_python")
  # One failing row ends that row only, never the run: under RLIMIT_NPROC=12
  # (as a spare uid: root ignores the limit) 64 threads or processes cannot
  # start, 2 can. Each failing row is followed by a row of the same model that
  # must still be measured (nothing of the failed row is left in the way), the
  # JSON must be whole, and nothing may outlive the run. With RLIMIT_NPROC=1
  # not even one fork or thread starts: every micro row fails, spin:off too.
  set(limited_models threaded thread-pool thread-locked-outside forked process-pool shared-memory)
  set(limited_ok micro/fork-wait micro/pool-apply)
  set(limited_fail)
  foreach(model IN LISTS limited_models)
    list(APPEND limited_ok workers/${model}/tasks:2/sleep_ms:5)
    list(APPEND limited_fail workers/${model}/tasks:64/sleep_ms:200)
  endforeach()
  list(JOIN limited_models "|" models_re)
  set(limited_filter "^(micro/(fork-wait|pool-apply)(/spin:off)?(/real_time)?$|workers/(${models_re})/)")
  set(micro_fail micro/fork-wait micro/pool-apply micro/thread-create-join)
  set(cpp_args)
  set(py_args)
  foreach(kind ok fail)
    foreach(row IN LISTS limited_${kind})
      list(APPEND cpp_args --${kind} ${row})
      list(APPEND py_args --${kind} python/${row})
    endforeach()
  endforeach()
  foreach(row micro/fork-wait micro/pool-apply)
    list(APPEND cpp_args --ok ${row}/spin:off)
  endforeach()
  set(cpp_micro_args)
  set(py_micro_args)
  foreach(row IN LISTS micro_fail)
    list(APPEND cpp_micro_args --fail ${row})
    list(APPEND py_micro_args --fail python/${row})
  endforeach()
  list(APPEND cpp_micro_args --fail micro/fork-wait/spin:off --fail micro/pool-apply/spin:off)
  set(bench_cmd ${BIN}/conclab-bench --benchmark_min_time=0.01 --repetitions 1 --benchmark_out={out} --benchmark_out_format=json)
  set(peer ${PROJECT_SOURCE_DIR}/bench/python/bench_workers.py)
  set(peer_cmd ${Python3_EXECUTABLE} ${peer} --min-time 0.01 --repetitions 1 --out {out})
  conclab_check(bench.cpp.row-fails-alone limited --nproc 12 ${cpp_args} --stage ${BIN}/conclab-bench
                -- ${bench_cmd} --cases 64x200,2x5 --benchmark_filter=${limited_filter})
  # thread-pool too in Python, whose ThreadPool the peer fixes for a failed
  # start (CPython's leaves the threads it started blocked forever); conclab's
  # ThreadPool constructor throws there, as
  # ThreadPool.AThreadThatCannotStartFailsTheConstructor checks.
  list(APPEND py_args --ok python/workers/thread-pool/tasks:2/sleep_ms:5
       --fail python/workers/thread-pool/tasks:64/sleep_ms:200)
  string(REPLACE "workers/(" "workers/(thread-pool|" py_limited_filter "${limited_filter}")
  conclab_check(bench.python.row-fails-alone limited --nproc 12 ${py_args} --stage ${peer} --python
                -- ${peer_cmd} --cases 64x200,2x5 --filter ${py_limited_filter})
  set(micro_filter "^micro/(fork-wait|pool-apply|thread-create-join)(/|$)")
  conclab_check(bench.cpp.micro-fails-alone limited --nproc 1 ${cpp_micro_args} --stage ${BIN}/conclab-bench
                -- ${bench_cmd} --benchmark_filter=${micro_filter})
  conclab_check(bench.python.micro-fails-alone limited --nproc 1 ${py_micro_args} --stage ${peer} --python
                -- ${peer_cmd} --filter ${micro_filter})
  set_tests_properties(bench.cpp.row-fails-alone bench.python.row-fails-alone bench.cpp.micro-fails-alone
                       bench.python.micro-fails-alone PROPERTIES SKIP_RETURN_CODE 77)
  if(CONCLAB_SANITIZER STREQUAL address)
    # LeakSanitizer's check at exit needs a task of its own, which RLIMIT_NPROC=1
    # refuses (it aborts). Failed rows are leak-checked by row-fails-alone.
    set_tests_properties(bench.cpp.micro-fails-alone PROPERTIES
                         ENVIRONMENT_MODIFICATION "ASAN_OPTIONS=string_append::detect_leaks=0")
  endif()

  conclab_check(bench.cpp.bad-args bad-args --extra "--cases 0x5" --extra "--cases 5y5" --extra "--context nokey"
                --says "--max-ideal-s -1 => -1 is not a positive number of seconds"
                --says "--max-ideal-s abc => 'abc' is not a number of seconds"
                --says "--max-ideal-s 0 => 0 is not a positive number of seconds" -- ${BIN}/conclab-bench)
  conclab_check(bench.python.bad-args bad-args --extra "--cases 0x5" --extra "--cases 5y5" --extra "--filter ("
                -- ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/bench/python/bench_workers.py)
  # per_task_us: microseconds, shown as a plain number (not "4.1s"), the same in the JSON.
  conclab_check(bench.cpp.per-task-us per-task-us -- ${BIN}/conclab-bench --benchmark_min_time=0.01 --repetitions 1)
  # The peers pin fork where they need it: they still run when forkserver is
  # the default start method, as in CPython 3.14.
  set(forkserver_rows)
  foreach(row workers/forked/tasks:2/sleep_ms:5 workers/process-pool/tasks:2/sleep_ms:5
          workers/shared-memory/tasks:2/sleep_ms:5 micro/fork-wait micro/pool-apply micro/shared-array-locked-increment
          micro/shared-dict-set micro/shared-dict-get)
    list(APPEND forkserver_rows --row python/${row})
  endforeach()
  set(forkserver_filter "^(workers/(forked|process-pool|shared-memory)/|micro/(fork-wait|pool-apply|shared-))")
  conclab_check(bench.python.forkserver-default start-method forkserver ${forkserver_rows}
                -- ${PROJECT_SOURCE_DIR}/bench/python/bench_workers.py --cases 2x5 --min-time 0.01
                --repetitions 1 --filter ${forkserver_filter} --out {out})

  # --- net/: the loopback rows (bench/net.cpp) and their CPython peers
  # (bench/python/bench_net.py), streams of 64 KiB instead of 64 MiB. The C++
  # rows register themselves, so the smoke run above has them; a failed row
  # (a descriptor left open is one) has no real_time and fails the rows check.
  set(net_bytes 65536)
  # (2 shutdowns for socketserver/shutdown instead of 16: see selectors/ below)
  set_tests_properties(bench.cpp.smoke PROPERTIES ENVIRONMENT
                       "CONCLAB_BENCH_NET_BYTES=${net_bytes};CONCLAB_BENCH_SHUTDOWN_ITERATIONS=2")
  set(bench_net ${PROJECT_SOURCE_DIR}/bench/python/bench_net.py)
  add_test(NAME bench.python.net-smoke COMMAND ${Python3_EXECUTABLE} ${bench_net} --net-bytes ${net_bytes}
           --min-time 0.01 --repetitions 2 --out ${smoke}/python-net.json)
  set_tests_properties(bench.python.net-smoke PROPERTIES FIXTURES_SETUP bench_python_net TIMEOUT 120)
  set(cpp_net_rows)
  set(py_net_rows)
  foreach(row net/tcp-rtt net/tcp-connect net/udp-rtt net/tcp-stream net/memcpy)
    list(APPEND cpp_net_rows ${row}/real_time)
    list(APPEND py_net_rows python/${row})
  endforeach()
  conclab_check(bench.cpp.net-rows bench-json ${smoke}/cpp.json ${cpp_net_rows})
  conclab_check(bench.python.net-rows bench-json ${smoke}/python-net.json ${py_net_rows})
  set_tests_properties(bench.cpp.net-rows PROPERTIES FIXTURES_REQUIRED bench_cpp)
  set_tests_properties(bench.python.net-rows PROPERTIES FIXTURES_REQUIRED bench_python_net)
  # The report of the smoke run's three files has the networking section
  # (printed from its heading to the next), every cell a time, every ratio there.
  set(show_net [=["$0" "$1" "$2" "$3" --out "$4" >/dev/null && awk '/^## /{p=/^## Networking/} p' "$4" && echo net=shown]=])
  conclab_check(bench.report-net-of-smoke-run run --expect net=shown --count "## Networking (loopback)=1"
                --count "| `net/=5" --count "GB/s) |=4" --count "TCP over loopback moves=2" --count "failed=0"
                --count "| – |=0" -- sh -c ${show_net} ${PROJECT_SOURCE_DIR}/scripts/report ${smoke}/cpp.json
                ${smoke}/python.json ${smoke}/python-net.json ${smoke}/net-report/REPORT.md)
  set_tests_properties(bench.report-net-of-smoke-run PROPERTIES
                       FIXTURES_REQUIRED "bench_cpp;bench_python;bench_python_net")
  # A peer thread that cannot start (RLIMIT_NPROC=1) fails its row alone: the
  # memcpy row (no thread) is still measured, the JSON is whole, nothing is left.
  set(cpp_net_args --ok net/memcpy)
  set(py_net_args --ok python/net/memcpy)
  foreach(row net/tcp-rtt net/tcp-connect net/udp-rtt net/tcp-stream)
    list(APPEND cpp_net_args --fail ${row})
    list(APPEND py_net_args --fail python/${row})
  endforeach()
  conclab_check(bench.cpp.net-fails-alone limited --nproc 1 ${cpp_net_args} --stage ${BIN}/conclab-bench
                -- ${bench_cmd} --benchmark_filter=^net/)
  conclab_check(bench.python.net-fails-alone limited --nproc 1 ${py_net_args} --stage ${bench_net}
                --stage ${peer} --python -- ${Python3_EXECUTABLE} ${bench_net} --net-bytes ${net_bytes}
                --min-time 0.01 --repetitions 1 --out {out})
  set_tests_properties(bench.cpp.net-fails-alone bench.python.net-fails-alone PROPERTIES SKIP_RETURN_CODE 77
                       ENVIRONMENT CONCLAB_BENCH_NET_BYTES=${net_bytes})
  if(CONCLAB_SANITIZER STREQUAL address)
    set_tests_properties(bench.cpp.net-fails-alone PROPERTIES  # as micro-fails-alone above
                         ENVIRONMENT_MODIFICATION "ASAN_OPTIONS=string_append::detect_leaks=0")
  endif()
  # --- fanout/ (bench/fanout.cpp: C clients against fanout-server --model M) and
  # its CPython peer (bench/python/bench_fanout.py: socketserver servers, the same
  # client), small: 5 clients x 20 requests without a service time, 20 clients held
  # 20 ms. Every design runs, each row measured (a failed one has no real_time),
  # and the report has the section with every design's row and no error cell.
  add_test(NAME bench.python.fanout-smoke COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/bench/python/bench_fanout.py
           --client ${BIN}/fanout-client --cases 5x0,20x20 --connections 100 --min-time 0.01 --repetitions 2
           --out ${smoke}/python-fanout.json)
  set_tests_properties(bench.python.fanout-smoke PROPERTIES FIXTURES_SETUP bench_python_fanout TIMEOUT 180)
  set(cpp_fanout_rows)
  foreach(design floor iterative fork-per-client prefork-accept prefork-flock prefork-mutex prefork-fdpass
          thread-per-client prethread-mutex prethread-main-accept select poll epoll epoll-threads
          socketserver-threading socketserver-forking)
    list(APPEND cpp_fanout_rows fanout/${design}/clients:5/sleep_ms:0/manual_time)
  endforeach()
  conclab_check(bench.cpp.fanout-rows bench-json ${smoke}/cpp.json ${cpp_fanout_rows}
                fanout/epoll/clients:20/sleep_ms:20/manual_time fanout/prefork-mutex/clients:20/sleep_ms:20/manual_time)
  conclab_check(bench.python.fanout-rows bench-json ${smoke}/python-fanout.json
                python/fanout/iterative/clients:5/sleep_ms:0 python/fanout/socketserver-threading/clients:5/sleep_ms:0
                python/fanout/socketserver-forking/clients:5/sleep_ms:0
                python/fanout/socketserver-threading/clients:20/sleep_ms:20)
  # The floor never sleeps: at 20 clients x 20 ms it puts the 20 connections through with no service time
  # (the report adds its time to the others' ideal: their best). Its requests take at least 10 ms less than
  # epoll's, which holds each 20 ms; not an absolute bound: under a sanitizer a fan-out costs some 20 ms more.
  conclab_check(bench.cpp.fanout-floor-never-sleeps run --expect floor_rows=2 --expect slept=0 --expect ok=1
                -- ${Python3_EXECUTABLE} -c [=[
import json, statistics, sys
rows = [b for b in json.load(open(sys.argv[1]))["benchmarks"] if b["run_type"] == "iteration"]
def of(model):
    return [b for b in rows if b["run_name"] == f"fanout/{model}/clients:20/sleep_ms:20/manual_time"]
floor, epoll = of("floor"), of("epoll")
held = statistics.median(b["p50_ms"] for b in floor) > statistics.median(b["p50_ms"] for b in epoll) - 10
slept = len([b for b in floor if b["sleep_ms"] != 0 or b["ideal_s"] != 0]) + held
print(f"floor_rows={len(floor)} slept={slept} ok={int(all(b['errors'] == 0 for b in floor + epoll))}")
]=] ${smoke}/cpp.json)
  set_tests_properties(bench.cpp.fanout-rows bench.cpp.fanout-floor-never-sleeps PROPERTIES FIXTURES_REQUIRED bench_cpp)
  set_tests_properties(bench.python.fanout-rows PROPERTIES FIXTURES_REQUIRED bench_python_fanout)
  set(show_fanout [=["$0" "$1" "$2" --out "$3" >/dev/null && awk '/^## /{p=/^## Client fan-out/} p' "$3" &&
                    echo fanout=shown]=])
  conclab_check(bench.report-fanout-of-smoke-run run --expect fanout=shown
                --count "## Client fan-out: server designs (UNP chapter 30)=1" --count "| prefork-fdpass | =3"
                --count "**Pools against a fork per connection.**=1" --count "- `prefork-fdpass`: =1"
                --count "against CPython's `socketserver-forking`=4" --count "errors**=0" --count "failed=0"
                -- sh -c ${show_fanout} ${PROJECT_SOURCE_DIR}/scripts/report ${smoke}/cpp.json
                ${smoke}/python-fanout.json ${smoke}/fanout-report/REPORT.md)
  set_tests_properties(bench.report-fanout-of-smoke-run PROPERTIES FIXTURES_REQUIRED "bench_cpp;bench_python_fanout")

  # --- selectors/ and socketserver/ (bench/mux.cpp) and their CPython peer
  # (bench/python/bench_mux.py), 2 shutdowns instead of 16 (each waits up to
  # 0.5 s first). select() past FD_SETSIZE is written as impossible, which is
  # no failure (the programs exit 0); any other row must be measured.
  set(bench_mux ${PROJECT_SOURCE_DIR}/bench/python/bench_mux.py)
  add_test(NAME bench.python.mux-smoke COMMAND ${Python3_EXECUTABLE} ${bench_mux} --min-time 0.01
           --repetitions 2 --long-repetitions 1 --shutdown-iterations 2 --out ${smoke}/python-mux.json)
  set_tests_properties(bench.python.mux-smoke PROPERTIES FIXTURES_SETUP bench_python_mux TIMEOUT 120)
  set(cpp_mux_rows socketserver/shutdown/iterations:2/manual_time)
  set(py_mux_rows python/socketserver/shutdown)
  foreach(backend select poll epoll epoll-edge)
    foreach(n 10 100 1000 10000)
      if(NOT (backend STREQUAL select AND n EQUAL 10000))
        list(APPEND cpp_mux_rows selectors/${backend}/fds:${n}/real_time)
        list(APPEND py_mux_rows python/selectors/${backend}/fds:${n})
      endif()
    endforeach()
  endforeach()
  conclab_check(bench.cpp.mux-rows bench-json --impossible selectors/select/fds:10000/real_time ${smoke}/cpp.json
                ${cpp_mux_rows})
  conclab_check(bench.python.mux-rows bench-json --impossible python/selectors/select/fds:10000
                ${smoke}/python-mux.json ${py_mux_rows})
  set_tests_properties(bench.cpp.mux-rows PROPERTIES FIXTURES_REQUIRED bench_cpp)
  set_tests_properties(bench.python.mux-rows PROPERTIES FIXTURES_REQUIRED bench_python_mux)
  # The report of the smoke run has the section (printed from its heading to
  # the next) with all 16 selectors rows, select's N = 10,000 impossible and
  # no other cell empty, the growth lines, the plot, and the shutdown row.
  set(show_mux [=["$0" "$1" "$2" --out "$3" >/dev/null && awk '/^## /{p=/^## Multiplexing/} p' "$3" &&
                 test -s "$(dirname "$3")/plots/selectors.png" && echo mux=shown]=])
  conclab_check(bench.report-mux-of-smoke-run run --expect mux=shown --count "## Multiplexing and socketserver=1"
                --count "| select | 10,000 | impossible | impossible | – |=1" --count "| – |=1"
                --count "| epoll-edge | =4" --count "(**×=8" --count "plots/selectors.png=1"
                --count "| `socketserver/shutdown` | =1" --count "times** as long as conclab's=1" --count "failed=0"
                -- sh -c ${show_mux} ${PROJECT_SOURCE_DIR}/scripts/report ${smoke}/cpp.json ${smoke}/python-mux.json
                ${smoke}/mux-report/REPORT.md)
  set_tests_properties(bench.report-mux-of-smoke-run PROPERTIES FIXTURES_REQUIRED "bench_cpp;bench_python_mux")
  # A bad shutdown count fails that row alone, saying why; the Python flag is checked.
  add_test(NAME bench.cpp.shutdown-iterations-bad COMMAND ${CMAKE_COMMAND} -E env CONCLAB_BENCH_SHUTDOWN_ITERATIONS=0
           ${BIN}/conclab-bench --repetitions 1 --benchmark_filter=^socketserver/)
  set_tests_properties(bench.cpp.shutdown-iterations-bad PROPERTIES TIMEOUT 60 PASS_REGULAR_EXPRESSION
                       "ERROR OCCURRED: 'CONCLAB_BENCH_SHUTDOWN_ITERATIONS='0' is not a number from 1 to 1000'")
  conclab_check(bench.python.mux-bad-args bad-args --says "--shutdown-iterations 0 => '0' is not a number from 1"
                --extra "--filter (" -- ${bench_mux})
  conclab_check(bench.python.net-bad-args bad-args --says "--net-bytes 0 => '0' is not a number of bytes"
                --says "--net-bytes 1x => '1x' is not a number of bytes" --extra "--filter (" -- ${bench_net})
  # conclab-bench takes the size from the environment: a bad one fails the rows that use it, saying why.
  add_test(NAME bench.cpp.net-bytes-bad COMMAND ${CMAKE_COMMAND} -E env CONCLAB_BENCH_NET_BYTES=64x
           ${BIN}/conclab-bench --repetitions 1 --benchmark_filter=^net/memcpy)
  set_tests_properties(bench.cpp.net-bytes-bad PROPERTIES TIMEOUT 60
                       PASS_REGULAR_EXPRESSION "ERROR OCCURRED: 'CONCLAB_BENCH_NET_BYTES='64x' is not a number")
endif()

# scripts/bench and scripts/test: a flag without its value is a usage error
# (exit 2, one line), found before anything is built or run.
conclab_check(scripts.bench.bad-args bad-args --says "--filter => --filter needs a regex"
              --says "--filter= => --filter needs a regex" --says "--out => --out needs a folder"
              --says "--filter --full => --filter needs a regex" --says "--full --nope => unknown argument"
              -- ${PROJECT_SOURCE_DIR}/scripts/bench)
conclab_check(scripts.test.bad-args bad-args --no-common --says "--preset => --preset needs a name"
              --says "--preset --werror => --preset needs a name" --says "--preset nope => unknown preset 'nope'"
              -- ${PROJECT_SOURCE_DIR}/scripts/test)

# scripts/report on a fixture with known numbers, and on bad input.
conclab_check(report.fixture report ${PROJECT_SOURCE_DIR}/scripts/report ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/report
              ${CMAKE_CURRENT_BINARY_DIR}/report-fixture)

# Lab 02: the counter ladder. The mutex, atomic and RLock programs must count
# exactly; the RLock one held across the sleep is serial (>= 5 x 100 ms), the
# one that sleeps outside the lock is not.
set(LAB02 ${LABS}/02-rlock-counter/python)
foreach(lang cpp python)
  foreach(variant mutex atomic)
    if(lang STREQUAL cpp)
      set(cmd ${BIN}/counter-${variant})
    else()
      set(cmd ${Python3_EXECUTABLE} ${LAB02}/counter_${variant}.py)
    endif()
    conclab_check(lab02.${lang}.${variant} run --expect model=${variant} --expect counter=200000
                  --expect expected=200000 -- ${cmd} --threads 2 --increments 100000)
    conclab_check(lab02.${lang}.${variant}.bad-args bad-args --extra "--threads 0" --extra "--increments x"
                  --extra "--threads 1001" -- ${cmd})
  endforeach()
  if(lang STREQUAL cpp)
    set(rlock ${BIN}/counter-rlock)
    set(outside ${BIN}/counter-rlock-outside)
    set(unsync ${BIN}/counter-unsync)
  else()
    set(rlock ${Python3_EXECUTABLE} ${LAB02}/counter_rlock.py)
    set(outside ${Python3_EXECUTABLE} ${LAB02}/counter_rlock_outside.py)
    set(unsync ${Python3_EXECUTABLE} ${LAB02}/counter_unsync.py)
  endif()
  conclab_check(lab02.${lang}.rlock run --expect model=rlock --expect counter=5 --expect expected=5
                --min elapsed_s=0.5 -- ${rlock} --tasks 5 --sleep-ms 100)
  conclab_check(lab02.${lang}.rlock-outside run --expect model=rlock-outside --expect counter=5 --expect expected=5
                --max elapsed_s=0.35 -- ${outside} --tasks 5 --sleep-ms 100)
  conclab_check(lab02.${lang}.rlock.bad-args bad-args --worker-flags -- ${rlock})
  conclab_check(lab02.${lang}.rlock-outside.bad-args bad-args --worker-flags -- ${outside})
  # The deliberate race: only one thread can be checked for an exact count.
  # It is undefined behaviour in C++, so the TSan build does not run it.
  if(NOT (lang STREQUAL cpp AND CONCLAB_SANITIZER STREQUAL thread))
    conclab_check(lab02.${lang}.unsync run --expect model=unsync --expect counter=100000 --expect expected=100000
                  -- ${unsync} --threads 1 --increments 100000)
    conclab_check(lab02.${lang}.unsync.bad-args bad-args --extra "--threads 0" -- ${unsync})
  endif()
endforeach()

# Lab 03: processes. Every child exits 0; children's appends never reach the
# parent; the zombie is seen (state Z) and then reaped.
set(LAB03 ${LABS}/03-fork/python)
foreach(lang cpp python)
  if(lang STREQUAL cpp)
    set(forked ${BIN}/fork-forked)
    set(noshare ${BIN}/fork-no-shared-state)
    set(zombies ${BIN}/fork-zombies)
  else()
    set(forked ${Python3_EXECUTABLE} ${LAB03}/forked.py)
    set(noshare ${Python3_EXECUTABLE} ${LAB03}/no_shared_state.py)
    set(zombies ${Python3_EXECUTABLE} ${LAB03}/zombies.py)
  endif()
  conclab_check(lab03.${lang}.forked run --expect model=forked --expect exit_ok=10 --count "say hi=10" -- ${forked})
  # --sleep-ms makes every child sleep: a program that ignored it would end
  # well under 0.1 s (the seed's children do not sleep).
  conclab_check(lab03.${lang}.forked.sleep run --expect sleep_ms=100 --expect exit_ok=10 --min elapsed_s=0.1
                -- ${forked} --sleep-ms 100)
  conclab_check(lab03.${lang}.no-shared-state run --expect parent_list_size=0 --count "ending []=1"
                --count "say hi=4" -- ${noshare} --processes 4)
  conclab_check(lab03.${lang}.zombies run --expect state_before=Z --expect state_after=- --expect exit_status=7
                --count "<defunct>=1" -- ${zombies})
  conclab_check(lab03.${lang}.forked.bad-args bad-args --extra "--processes 0" --extra "--processes x" -- ${forked})
  conclab_check(lab03.${lang}.no-shared-state.bad-args bad-args --extra "--processes -2" -- ${noshare})
  conclab_check(lab03.${lang}.zombies.bad-args bad-args -- ${zombies})
endforeach()

# Lab 04: shared memory. Children's writes reach the parent.
set(LAB04 ${LABS}/04-shared-memory/python)
foreach(lang cpp python)
  if(lang STREQUAL cpp)
    set(array ${BIN}/shm-array)
    set(dict ${BIN}/shm-dict)
  else()
    set(array ${Python3_EXECUTABLE} ${LAB04}/shared_array.py)
    set(dict ${Python3_EXECUTABLE} ${LAB04}/shared_dict.py)
  endif()
  conclab_check(lab04.${lang}.shared-array run --expect parent_sees=100,101,33,44 --count "1 -----> 100=1"
                --count "1 -----> 101=1" -- ${array})
  conclab_check(lab04.${lang}.shared-array.four run --expect parent_sees=100,101,102,103 -- ${array} --processes 4)
  conclab_check(lab04.${lang}.shared-dict run --expect entries=3 --expect expected=3
                --count "parent sees [100, 101, 102]=1" -- ${dict} --processes 3)
  conclab_check(lab04.${lang}.shared-array.bad-args bad-args --extra "--processes 5" --extra "--processes 0" -- ${array})
  conclab_check(lab04.${lang}.shared-dict.bad-args bad-args --extra "--processes 0" -- ${dict})
endforeach()

# Lab 05: process pools. The seed's demo delivers every callback; a worker
# killed mid-task fails that task and is replaced in conclab, and leaves the
# task hanging in CPython (seen through --get-timeout).
set(LAB05 ${LABS}/05-process-pool/python)
foreach(lang cpp python)
  if(lang STREQUAL cpp)
    set(demo ${BIN}/pool-demo)
  else()
    set(demo ${Python3_EXECUTABLE} ${LAB05}/pool_demo.py)
  endif()
  conclab_check(lab05.${lang}.pool-demo run --expect model=process-pool --expect callbacks=10 --count "end=1"
                --count "101=3" --min elapsed_s=0.4 --max elapsed_s=3 -- ${demo} --sleep-ms 100)
  conclab_check(lab05.${lang}.pool-demo.bad-args bad-args --worker-flags --extra "--processes 0" -- ${demo})
endforeach()
conclab_check(lab05.cpp.worker-crash run --expect ok=5 --expect failed=1 --expect replaced=1
              --count "signal 9 (Killed)=1" -- ${BIN}/pool-worker-crash)
conclab_check(lab05.cpp.worker-crash.bad-args bad-args -- ${BIN}/pool-worker-crash)
conclab_check(lab05.python.worker-crash run --expect ok=5 --expect hung=1
              -- ${Python3_EXECUTABLE} ${LAB05}/pool_worker_crash.py --get-timeout 2)
conclab_check(lab05.python.worker-crash.bad-args bad-args --extra "--get-timeout x"
              -- ${Python3_EXECUTABLE} ${LAB05}/pool_worker_crash.py)
