# Lab 13's checks of fanout-client (tests/net/lab13_client_check.py): the
# summary line and --json against a small Python server, the forking client,
# errors and the cap (exit 1, the line still printed), a descriptor limit
# below --clients, --sources seen by the server; bad flags through tests/check.py.
set(lab13_client_check ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/net/lab13_client_check.py --bin-dir ${CMAKE_RUNTIME_OUTPUT_DIRECTORY})
foreach(test summary json forking errors cap fd-limit sources)
  add_test(NAME lab13.client.${test} COMMAND ${lab13_client_check} ${test})
endforeach()

add_test(NAME lab13.client.bad-args COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/check.py bad-args
  "--extra=--port 0" "--extra=--port 65536" "--extra=--clients 0" "--extra=--requests x" "--extra=--bytes 0"
  "--extra=--bytes 1048577" "--extra=--timeout-ms 0" "--extra=--cap-s 0" "--extra=--sources 0"
  "--extra=--sources 251" "--extra=--children 0" "--extra=--children 2 --clients 3" "--extra=--loops 3"
  "--extra=--json" "--extra=--host ::1 --sources 3"
  "--says=--clients 100000 --requests 1000 => too many requests"
  -- ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/fanout-client)

get_property(lab13_client_tests DIRECTORY PROPERTY TESTS)
list(FILTER lab13_client_tests INCLUDE REGEX "^lab13\\.client\\.")
set_tests_properties(${lab13_client_tests} PROPERTIES TIMEOUT 60)
