# scripts/grade (issue 10) through tests/grade_check.py. The grader builds into
# its own folders under this build (grade/plain, grade/tsan), with this build's
# -Werror choice, so CI also proves that starters and solutions compile clean.
# They run alone (RUN_SERIAL): the performance checks are ratios measured on
# this machine, and the leftover checks look at the whole of /dev/shm.
set(GRADE_CHECK ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/grade_check.py --build-root ${CMAKE_BINARY_DIR}/grade)
if(CONCLAB_WERROR)
  list(APPEND GRADE_CHECK --werror)
endif()
# The grader builds its own plain and ThreadSanitizer flavours whatever this build's preset
# is, so grading every exercise is done once, in the builds without a sanitizer. The
# student edition (scripts/handout) has no solutions, and so neither check.
if(NOT CONCLAB_SANITIZER AND EXISTS ${PROJECT_SOURCE_DIR}/labs/01-threads-speedup/exercises/solutions)
  # Every reference solution scores full marks; labs 01-05 have 3 to 5 exercises each.
  add_test(NAME grade.solutions COMMAND ${GRADE_CHECK} solutions)
  # Every untouched starter (as committed: a student's edits do not count) builds and
  # scores zero on every check: no check that cannot fail.
  add_test(NAME grade.starters COMMAND ${GRADE_CHECK} starters)
  set_tests_properties(grade.solutions grade.starters PROPERTIES RUN_SERIAL TRUE TIMEOUT 1800)
endif()
# Programs that hang, fork without end, leave zombies, processes or segments, crash, print
# garbage, do not build: each is named and cleaned up, and the grader goes on.
add_test(NAME grade.faults COMMAND ${GRADE_CHECK} faults)
# Unknown lab or exercise: exit 2 naming the choices; --hint, --list, --show-solution, --help.
add_test(NAME grade.args COMMAND ${GRADE_CHECK} args)
# scripts/handout: the student edition, without solutions or answers.
add_test(NAME grade.handout COMMAND ${GRADE_CHECK} handout)
set_tests_properties(grade.faults PROPERTIES RUN_SERIAL TRUE TIMEOUT 600)
set_tests_properties(grade.args grade.handout PROPERTIES TIMEOUT 120)
