# Helpers shared by every CMakeLists.txt of conclab.

# conclab_require(<Name> PACKAGE <debian-package> [find_package args...])
# find_package() that stops configure with the Debian package to install.
macro(conclab_require name)
  cmake_parse_arguments(_req "" "PACKAGE" "" ${ARGN})
  find_package(${name} ${_req_UNPARSED_ARGUMENTS} QUIET)
  if(NOT ${name}_FOUND)
    message(FATAL_ERROR
      "conclab needs ${name}: install the Debian package '${_req_PACKAGE}' "
      "(scripts/setup installs everything: run it, then configure again)")
  endif()
endmacro()

# conclab_lab(<executable> <source>) — one line per lab program.
# The executable lands in <build>/bin/ and links the shared library.
function(conclab_lab name source)
  add_executable(${name} ${source})
  target_link_libraries(${name} PRIVATE conclab::shared)
endfunction()
