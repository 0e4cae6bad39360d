# Lab 08's checks (tests/net/lab08_check.py): curl and wrk against the HTTP/1.1
# servers, the same bytes from C++ and Python, the protocol, and faults.
set(lab08_check ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/net/lab08_check.py --bin-dir ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}
    --sanitizer=${CONCLAB_SANITIZER})
foreach(server iterative threaded python)
  foreach(test curl protocol faults signals)
    add_test(NAME lab08.${test}.${server} COMMAND ${lab08_check} ${test} ${server})
  endforeach()
endforeach()
foreach(server iterative threaded python)
  add_test(NAME lab08.wrk.${server} COMMAND ${lab08_check} wrk ${server})
endforeach()
add_test(NAME lab08.same-bytes COMMAND ${lab08_check} same-bytes)
add_test(NAME lab08.threads-joined COMMAND ${lab08_check} threads-joined)
add_test(NAME lab08.seed COMMAND ${lab08_check} seed)

set(lab08_args ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/check.py bad-args
    --extra "--port 65536" --extra "--port x" --extra "--idle-timeout 0" --extra "--max-header-bytes 10"
    --extra "--max-requests 0")
add_test(NAME lab08.bad-args.iterative COMMAND ${lab08_args} -- ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/http-hello-iterative)
add_test(NAME lab08.bad-args.threaded COMMAND ${lab08_args} -- ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/http-hello-threaded)
add_test(NAME lab08.bad-args.python COMMAND ${lab08_args} -- ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/labs/08-http-hello/python/http_hello.py)
add_test(NAME lab08.bad-args.seed COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/check.py bad-args
         --extra "--port 65536" -- ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/labs/08-http-hello/python/seed_server.py)

get_property(lab08_tests DIRECTORY PROPERTY TESTS)
list(FILTER lab08_tests INCLUDE REGEX "^lab08\\.")
set_tests_properties(${lab08_tests} PROPERTIES TIMEOUT 90)
