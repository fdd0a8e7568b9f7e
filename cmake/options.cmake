# Compiler warnings and the sanitizer / fuzzer build options, applied to
# every target of the project.
add_compile_options(-Wall -Wextra -Wpedantic -Wno-missing-field-initializers)

if(NUCLEUS_SANITIZE AND NUCLEUS_TSAN)
  message(FATAL_ERROR "NUCLEUS_SANITIZE and NUCLEUS_TSAN cannot be combined")
endif()
# The sanitizer and fuzzer builds also check the standard library's
# preconditions (an index past a vector's size, within its capacity, is
# not an ASan error).
if(NUCLEUS_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
    -D_GLIBCXX_ASSERTIONS)
  add_link_options(-fsanitize=address,undefined)
endif()
if(NUCLEUS_TSAN)
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
endif()
if(NUCLEUS_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "NUCLEUS_FUZZ needs clang (CXX=clang++)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
    -D_GLIBCXX_ASSERTIONS)
  add_link_options(-fsanitize=address,undefined)
endif()
