# Lab 13's server checks (tests/net/lab13_server_check.py): every model of
# fanout-server and of its Python peer under 100 concurrent clients, the bad
# clients, a prefork child killed, the sleep (timers vs a blocking sleep), out
# of descriptors (EMFILE) without a spin;
# bad flags through tests/check.py.
set(lab13_server_check ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/net/lab13_server_check.py --bin-dir ${CMAKE_RUNTIME_OUTPUT_DIRECTORY})
set(lab13_models iterative fork-per-client prefork-accept prefork-flock prefork-mutex prefork-fdpass
    thread-per-client prethread-mutex prethread-main-accept select poll epoll epoll-threads
    socketserver-threading socketserver-forking floor py-tcp py-threading py-forking)
foreach(model ${lab13_models})
  foreach(test load faults)
    add_test(NAME lab13.server.${test}.${model} COMMAND ${lab13_server_check} ${test} ${model})
  endforeach()
  if(NOT model STREQUAL "floor")  # floor has no sleep
    add_test(NAME lab13.server.sleep.${model} COMMAND ${lab13_server_check} sleep ${model})
  endif()
endforeach()
foreach(model select poll epoll epoll-threads)
  add_test(NAME lab13.server.sleep.${model}.blocking COMMAND ${lab13_server_check} sleep ${model}+blocking)
endforeach()
foreach(model prefork-accept prefork-flock prefork-mutex prefork-fdpass)
  add_test(NAME lab13.server.kill.${model} COMMAND ${lab13_server_check} kill ${model})
endforeach()
foreach(model select poll epoll epoll-threads thread-per-client prethread-main-accept socketserver-threading
              fork-per-client floor)
  add_test(NAME lab13.server.emfile.${model} COMMAND ${lab13_server_check} emfile ${model})
endforeach()
foreach(model epoll thread-per-client py-threading)  # the soft descriptor limit raised to the hard one, the table grown
  add_test(NAME lab13.server.fdlimit.${model} COMMAND ${lab13_server_check} fdlimit ${model})
endforeach()
add_test(NAME lab13.server.usage COMMAND ${lab13_server_check} usage)

set(lab13_bad ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/check.py bad-args)
set(lab13_bad_flags "--extra=--model epoll --port 65536" "--extra=--model epoll --workers 0"
    "--extra=--model epoll --sleep-ms -1" "--extra=--model epoll --max-bytes 0")  # a bad --model: lab13.server.usage (the line names every model)
add_test(NAME lab13.server.bad-args.fanout-server COMMAND ${lab13_bad} ${lab13_bad_flags}
         -- ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/fanout-server)
add_test(NAME lab13.server.bad-args.fanout_server.py COMMAND ${lab13_bad} "--extra=--model tcp --port 65536"
         "--extra=--model tcp --sleep-ms -1" "--extra=--model nonesuch"
         -- ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/labs/13-server-designs/python/fanout_server.py)

get_property(lab13_server_tests DIRECTORY PROPERTY TESTS)
list(FILTER lab13_server_tests INCLUDE REGEX "^lab13\\.server\\.")
set_tests_properties(${lab13_server_tests} PROPERTIES TIMEOUT 120)
