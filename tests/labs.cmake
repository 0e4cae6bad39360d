# ctest checks that the labs teach what they say: every README's Expected
# output is what its commands really print, every relative link resolves
# (tests/readme_check.py); the timing labs' lines arrive through a pipe when
# they are printed, and a thread that cannot start names the call and the
# limits (tests/lab_check.py).
set(README_CHECK ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/readme_check.py)
set(LAB_CHECK ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/lab_check.py)
set(BIN ${CMAKE_RUNTIME_OUTPUT_DIRECTORY})
set(LABS ${PROJECT_SOURCE_DIR}/labs)

# readme.<lab folder>: the commands of its Expected output, run and compared.
file(GLOB lab_readmes CONFIGURE_DEPENDS ${LABS}/*/README.md)
foreach(readme ${lab_readmes})
  get_filename_component(lab_dir ${readme} DIRECTORY)
  get_filename_component(lab ${lab_dir} NAME)
  add_test(NAME readme.${lab}
           COMMAND ${README_CHECK} output ${readme} --root ${PROJECT_SOURCE_DIR} --bin-dir ${BIN}
                   --python ${Python3_EXECUTABLE} --sanitizer "${CONCLAB_SANITIZER}")
  # Mostly sleeps of up to 10 s: a high cost makes `ctest -j` start them
  # first, so that the short tests run meanwhile.
  set_tests_properties(readme.${lab} PROPERTIES TIMEOUT 180 COST 1000)
endforeach()

# readme.checker: the checker accepts a fixture README and refuses each
# broken command of another, for the right reason (so it can fail).
add_test(NAME readme.checker COMMAND ${README_CHECK} self-test ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/readme)

add_test(NAME readme.links
         COMMAND ${README_CHECK} links ${PROJECT_SOURCE_DIR}/README.md ${LABS}/README.md ${lab_readmes}
                 ${PROJECT_SOURCE_DIR}/docs/DESIGN.md)

# flushed.<program>: through a pipe, the first line comes well before the
# end (the serial workers print one by one, the RLock counter one number per
# sleep, the threaded workers at once and then sleep, the pool's apply()
# answers before the callbacks).
function(conclab_flushed name gap)
  add_test(NAME flushed.${name} COMMAND ${LAB_CHECK} flushed --gap ${gap} -- ${ARGN})
  set_tests_properties(flushed.${name} PROPERTIES TIMEOUT 60)
endfunction()
set(PY ${Python3_EXECUTABLE})
conclab_flushed(cpp.threads-serial 0.5 ${BIN}/threads-serial --tasks 3 --sleep-ms 400)
conclab_flushed(python.serial 0.5 ${PY} ${LABS}/01-threads-speedup/python/serial.py --tasks 3 --sleep-ms 400)
conclab_flushed(cpp.threads-threaded 0.4 ${BIN}/threads-threaded --tasks 3 --sleep-ms 800)
conclab_flushed(python.threaded 0.4 ${PY} ${LABS}/01-threads-speedup/python/threaded.py --tasks 3 --sleep-ms 800)
conclab_flushed(cpp.counter-rlock 0.5 ${BIN}/counter-rlock --tasks 3 --sleep-ms 400)
conclab_flushed(python.counter-rlock 0.5 ${PY} ${LABS}/02-rlock-counter/python/counter_rlock.py --tasks 3 --sleep-ms 400)
conclab_flushed(cpp.pool-demo 0.5 ${BIN}/pool-demo --processes 1 --tasks 2 --sleep-ms 300)
conclab_flushed(python.pool-demo 0.5 ${PY} ${LABS}/05-process-pool/python/pool_demo.py --processes 1 --tasks 2
                --sleep-ms 300)

# whole-lines: ten children of no_shared_state.py print at once, with
# Python's output unbuffered, and no line is cut into by another.
add_test(NAME whole-lines.python.no-shared-state
         COMMAND ${LAB_CHECK} whole-lines --line "say hi \\[\\d+\\]" --runs 5
                 -- ${PY} ${LABS}/03-fork/python/no_shared_state.py --processes 10)
set_tests_properties(whole-lines.python.no-shared-state PROPERTIES TIMEOUT 60)

# thread-limits: under a real `ulimit -u` (as a spare uid when run as
# root, who is exempt) and `ulimit -v`, the errors and --help of
# threads-threaded name the call and the limits with their values.
add_test(NAME thread-limits COMMAND ${LAB_CHECK} thread-limits ${BIN} --sanitizer "${CONCLAB_SANITIZER}")
set_tests_properties(thread-limits PROPERTIES TIMEOUT 60)
