# scripts/compare and scripts/bench's run folders, through tests/compare_check.py:
# plain Python and git, no benchmark binary (scripts/bench runs with a fake runner).
set(COMPARE_CHECK ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/compare_check.py)
set(COMPARE ${PROJECT_SOURCE_DIR}/scripts/compare)
set(COMPARE_FIXTURES ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/compare)

# The Mann-Whitney U p-values: hand-computed cases, a count of every split, the verdict rule.
add_test(NAME scripts.compare.pvalues COMMAND ${COMPARE_CHECK} pvalues --compare ${COMPARE})
# Two fixture runs, one row made 2x slower: exactly that row is flagged; the 3%, 1- and
# 3-repetition rows are "same"; rows only on one side and failed rows are listed apart.
add_test(NAME scripts.compare.verdicts
         COMMAND ${COMPARE_CHECK} verdicts --compare ${COMPARE} --fixtures ${COMPARE_FIXTURES})
# Bad inputs: exit 2 with one line naming the file or flag.
add_test(NAME scripts.compare.bad-input
         COMMAND ${COMPARE_CHECK} bad-input --compare ${COMPARE} --fixtures ${COMPARE_FIXTURES})
# scripts/bench in a temporary clone: a folder per run, results/latest, git status clean,
# the reference untouched unless --update-reference, the filter and machine context passed on.
add_test(NAME scripts.bench.runs COMMAND ${COMPARE_CHECK} bench-runs --repo ${PROJECT_SOURCE_DIR})
# scripts/test's /dev/shm check (scripts/shm-leaks) compares before and after: a
# segment planted in /dev/shm before is not this run's; one made after is, by name.
add_test(NAME scripts.test.shm-leaks COMMAND ${COMPARE_CHECK} shm-leaks --script ${PROJECT_SOURCE_DIR}/scripts/shm-leaks
                                             --test ${PROJECT_SOURCE_DIR}/scripts/test)
# A row's name without what Google Benchmark appends (/real_time, /repeats:3, ...).
add_test(NAME scripts.benchdata.names COMMAND ${COMPARE_CHECK} names --scripts ${PROJECT_SOURCE_DIR}/scripts)
# The same with conclab-bench's own --benchmark_filter (std::regex): scripts/bench --filter 'x$'.
if(CONCLAB_BUILD_BENCH)
  add_test(NAME scripts.bench.anchored-filter
           COMMAND ${COMPARE_CHECK} gbench-filter --scripts ${PROJECT_SOURCE_DIR}/scripts --bench ${BIN}/conclab-bench)
  set_tests_properties(scripts.bench.anchored-filter PROPERTIES TIMEOUT 60)
endif()
set_tests_properties(scripts.benchdata.names scripts.compare.pvalues scripts.compare.verdicts scripts.compare.bad-input scripts.test.shm-leaks
                     PROPERTIES TIMEOUT 60)
set_tests_properties(scripts.bench.runs PROPERTIES TIMEOUT 300)
