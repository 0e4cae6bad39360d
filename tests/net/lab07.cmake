# Lab 07 (UDP): tests/net/lab07_check.py runs the C++ server and client and
# their Python originals against each other, datagram for datagram.
set(lab07_check ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/net/lab07_check.py
    ${CMAKE_RUNTIME_OUTPUT_DIRECTORY} ${PROJECT_SOURCE_DIR}/labs/07-udp/python)
set(lab07_tests lab07.client-wire lab07.errors)
add_test(NAME lab07.client-wire COMMAND ${lab07_check} client-wire)
add_test(NAME lab07.errors COMMAND ${lab07_check} errors)
foreach(lang cpp python)
  foreach(what interop truncation descriptors signals)
    add_test(NAME lab07.${what}.${lang} COMMAND ${lab07_check} ${what} ${lang})
    list(APPEND lab07_tests lab07.${what}.${lang})
  endforeach()
  # Bad flags: one line on stderr, exit 2 (tests/check.py bad-args).
  foreach(program server client)
    if(lang STREQUAL cpp)
      set(cmd ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/udp-${program})
    else()
      set(cmd ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/labs/07-udp/python/${program}.py)
    endif()
    set(extra "--extra=--port 65536" "--extra=--port -1" "--extra=--port x")
    if(program STREQUAL server)
      list(APPEND extra "--extra=--bufsize 0" "--extra=--bufsize 65537" "--extra=--bufsize x")
    endif()
    add_test(NAME lab07.${program}.bad-args.${lang}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/check.py bad-args ${extra} -- ${cmd})
    list(APPEND lab07_tests lab07.${program}.bad-args.${lang})
  endforeach()
endforeach()
set_tests_properties(${lab07_tests} PROPERTIES TIMEOUT 60)
