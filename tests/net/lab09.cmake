# Lab 09's checks (tests/net/lab09_check.py): the "10086" menu bot, C++ and
# Python clients against C++ and Python servers byte for byte, one caller at a
# time or all at once, faults, and the clients' own edge cases.
set(lab09_check ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/net/lab09_check.py --bin-dir ${CMAKE_RUNTIME_OUTPUT_DIRECTORY})
foreach(server iterative threaded socketserver python python-threaded python-socketserver)
  foreach(test interop bytes faults signals)
    add_test(NAME lab09.${test}.${server} COMMAND ${lab09_check} ${test} ${server})
  endforeach()
endforeach()
foreach(server iterative python)
  add_test(NAME lab09.waits.${server} COMMAND ${lab09_check} waits ${server})
endforeach()
foreach(server threaded socketserver python-threaded python-socketserver)
  add_test(NAME lab09.concurrent.${server} COMMAND ${lab09_check} concurrent ${server})
endforeach()
foreach(client cpp python)
  add_test(NAME lab09.client.${client} COMMAND ${lab09_check} client ${client})
endforeach()

set(lab09_args ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/check.py bad-args --extra "--port 65536" --extra "--port x")
set(lab09_py ${PROJECT_SOURCE_DIR}/labs/09-menu-bot/python)
foreach(program menu-bot-iterative menu-bot-threaded menu-bot-socketserver)
  add_test(NAME lab09.bad-args.${program} COMMAND ${lab09_args} --extra "--idle-timeout 0"
           -- ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/${program})
endforeach()
add_test(NAME lab09.bad-args.menu-bot-client COMMAND ${lab09_args} --extra "--timeout 0"
         -- ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/menu-bot-client)
foreach(script menu_bot_server menu_bot_threaded menu_bot_socketserver)
  add_test(NAME lab09.bad-args.${script}.py COMMAND ${lab09_args} --extra "--idle-timeout 0"
           -- ${Python3_EXECUTABLE} ${lab09_py}/${script}.py)
endforeach()
add_test(NAME lab09.bad-args.menu_bot_client.py COMMAND ${lab09_args} --extra "--timeout 0"
         -- ${Python3_EXECUTABLE} ${lab09_py}/menu_bot_client.py)

get_property(lab09_tests DIRECTORY PROPERTY TESTS)
list(FILTER lab09_tests INCLUDE REGEX "^lab09\\.")
set_tests_properties(${lab09_tests} PROPERTIES TIMEOUT 90)
