# Lab 11 (I/O multiplexing): tests/net/lab11_check.py runs the C++ programs and
# their Python originals against each other, many clients at once, and faulty ones.
set(lab11_check ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/net/lab11_check.py
    ${CMAKE_RUNTIME_OUTPUT_DIRECTORY} --sanitizer=${CONCLAB_SANITIZER})
set(lab11_bad_args ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/check.py bad-args)
set(lab11_py ${PROJECT_SOURCE_DIR}/labs/11-io-multiplexing/python)

function(lab11_test name)
  add_test(NAME lab11.${name} COMMAND ${lab11_check} ${ARGN})
  set_property(GLOBAL APPEND PROPERTY lab11_tests lab11.${name})
endfunction()

foreach(lang cpp python)
  foreach(backend select poll epoll epoll-edge)
    lab11_test(echo.${lang}-${backend} echo ${lang}-${backend})
    lab11_test(faults.${lang}-${backend} faults ${lang}-${backend})
    lab11_test(signals.${lang}-${backend} signals ${lang}-${backend})
  endforeach()
  lab11_test(no-drain.${lang} no-drain ${lang})
  lab11_test(fd-setsize.${lang}-select fd-setsize ${lang}-select)
  lab11_test(stdin.${lang} stdin ${lang})
  lab11_test(two-listeners.${lang} two-listeners ${lang})
  lab11_test(http-curl.${lang} http-curl ${lang})
  lab11_test(http-protocol.${lang} http-protocol ${lang})
  lab11_test(http-faults.${lang} http-faults ${lang})
  lab11_test(http-many.${lang} http-many ${lang})
endforeach()
lab11_test(http-same-bytes http-same-bytes)
foreach(selector select poll)  # mux-http-hello --selector: the same loop on the other back ends
  lab11_test(http-protocol.cpp-${selector} http-protocol cpp-${selector})
  lab11_test(http-many.cpp-${selector} http-many cpp-${selector})
endforeach()

# Bad flags: one line on stderr, exit 2 (tests/check.py bad-args).
set(lab11_net_bad "--extra=--port 65536" "--extra=--port -1" "--extra=--port x" "--extra=--port")
# lab11_bad_args(NAME EXECUTABLE "PYTHON FILE [ARGS]" EXTRA...): the C++ program and its Python original.
function(lab11_bad_args name exe py)
  separate_arguments(py_cmd UNIX_COMMAND "${lab11_py}/${py}")
  add_test(NAME lab11.${name}.bad-args.cpp COMMAND ${lab11_bad_args} ${ARGN} -- ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/${exe})
  add_test(NAME lab11.${name}.bad-args.python COMMAND ${lab11_bad_args} ${ARGN} -- ${Python3_EXECUTABLE} ${py_cmd})
  set_property(GLOBAL APPEND PROPERTY lab11_tests lab11.${name}.bad-args.cpp lab11.${name}.bad-args.python)
endfunction()
lab11_bad_args(select-stdin mux-select-stdin select_stdin.py "--extra=--timeout 0" "--extra=--timeout x")
lab11_bad_args(select-echo mux-select-echo select_echo.py ${lab11_net_bad})
lab11_bad_args(epoll-edge-echo mux-epoll-edge-echo "selectors_echo.py --selector epoll-edge" ${lab11_net_bad}
               "--extra=--no-drain=x")
lab11_bad_args(two-listeners mux-two-listeners two_listeners.py ${lab11_net_bad} "--extra=--port2 65536"
               "--extra=--port2 x")
lab11_bad_args(http-hello mux-http-hello http_hello_epoll.py ${lab11_net_bad} "--extra=--max-header-bytes 65537"
               "--extra=--idle-timeout 0")

# --selector: a name the program does not take (epoll-edge: its loop does not drain)
add_test(NAME lab11.http-hello.bad-selector.cpp COMMAND ${lab11_bad_args} "--extra=--selector kqueue"
         "--extra=--selector epoll-edge" -- ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/mux-http-hello)
set_property(GLOBAL APPEND PROPERTY lab11_tests lab11.http-hello.bad-selector.cpp)
get_property(lab11_all GLOBAL PROPERTY lab11_tests)
set_tests_properties(${lab11_all} PROPERTIES TIMEOUT 90)
