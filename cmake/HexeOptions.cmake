# Target-scoped compiler options shared by every hexe target.
add_library(hexe_options INTERFACE)
target_compile_options(hexe_options INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)
# Includes are rooted at the repository: #include "cpu_kernels/format.h".
target_include_directories(hexe_options INTERFACE ${PROJECT_SOURCE_DIR})
if(HEXE_SANITIZE)
  # -Wno-maybe-uninitialized: with the sanitizers' instrumentation at -O1, GCC 12 reports it
  # inside libstdc++'s <regex> (10 warnings from override_rules.cpp, none in our code); the
  # Release build keeps the warning.
  target_compile_options(hexe_options INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                         -fno-sanitize-recover=undefined $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>)
  target_link_options(hexe_options INTERFACE -fsanitize=address,undefined)
endif()

# hexe_isa_sources(target FLAGS file...) compiles the files with exactly one ISA's flags.
function(hexe_isa_sources target flags)
  target_sources(${target} PRIVATE ${ARGN})
  set_source_files_properties(${ARGN} TARGET_DIRECTORY ${target} PROPERTIES COMPILE_OPTIONS "${flags}")
endfunction()
