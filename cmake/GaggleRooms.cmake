# gaggle_room(NAME DEPS dep... [TORCH])
#   One static library per room of lib/ (design.md §3), from lib/NAME/*.cpp. A room
#   with no sources yet is an INTERFACE library so that dependents still link.
function(gaggle_room name)
  cmake_parse_arguments(ROOM "TORCH" "" "DEPS;EXCLUDE" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/lib/${name}/*.cpp
                                      ${PROJECT_SOURCE_DIR}/lib/${name}/detail/*.cpp)
  foreach(file IN LISTS ROOM_EXCLUDE)  # built elsewhere (a torch-free part of a torch room)
    list(REMOVE_ITEM sources ${PROJECT_SOURCE_DIR}/lib/${name}/${file})
  endforeach()
  if(sources)
    add_library(gaggle_${name} STATIC ${sources})
    target_include_directories(gaggle_${name} PUBLIC ${PROJECT_SOURCE_DIR}/lib)
    target_link_libraries(gaggle_${name} PUBLIC ${ROOM_DEPS})
    set_target_properties(gaggle_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
    gaggle_unity(gaggle_${name})
    if(ROOM_TORCH AND GAGGLE_TORCH_PCH)
      target_precompile_headers(gaggle_${name} PRIVATE <torch/torch.h>)
    endif()
  else()
    add_library(gaggle_${name} INTERFACE)
    target_include_directories(gaggle_${name} INTERFACE ${PROJECT_SOURCE_DIR}/lib)
    target_link_libraries(gaggle_${name} INTERFACE ${ROOM_DEPS})
  endif()
endfunction()

# gaggle_unity(TARGET)
#   With GAGGLE_UNITY_BUILD, compiles TARGET's sources GAGGLE_UNITY_BATCH at a time as one
#   file, so that the headers they share (LibTorch's above all) are parsed once per batch.
function(gaggle_unity target)
  if(GAGGLE_UNITY_BUILD)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE ${GAGGLE_UNITY_BATCH})
  endif()
endfunction()

# LibTorch follows torch::set_num_threads only with the OpenMP build of OpenBLAS; if the
# pthread build is also installed it may win the alternatives link. Pin the OpenMP one.
function(gaggle_pin_openblas target)
  set(dir /usr/lib/x86_64-linux-gnu/openblas-openmp)
  if(EXISTS ${dir}/libblas.so.3)
    target_link_options(${target} PRIVATE "LINKER:--disable-new-dtags,-rpath,${dir}")
  endif()
endfunction()

# gaggle_test_room(NAME [TORCH] DEPS ...)
#   tests/NAME/*_test.cpp -> one executable gaggle_test_NAME. Torch-free executables are
#   registered test case by test case; torch ones once per executable, because every
#   torch process pays ~0.9 s before main (build-notes.md).
function(gaggle_test_room name)
  cmake_parse_arguments(T "TORCH" "" "DEPS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/${name}/*_test.cpp)
  if(NOT sources)
    return()
  endif()
  add_executable(gaggle_test_${name} ${sources} $<TARGET_OBJECTS:gaggle_catch_main>
                                     ${PROJECT_SOURCE_DIR}/tests/support/test_support.cpp)
  target_include_directories(gaggle_test_${name} PRIVATE ${PROJECT_SOURCE_DIR}/lib ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(gaggle_test_${name} PRIVATE Catch2::Catch2 ${T_DEPS})
  gaggle_unity(gaggle_test_${name})
  target_compile_definitions(gaggle_test_${name} PRIVATE
    GAGGLE_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    GAGGLE_TEST_DATA="${PROJECT_SOURCE_DIR}/tests/data"
    GAGGLE_BINARY="$<TARGET_FILE:gaggle>"
    GAGGLE_BUILD_DIR="${PROJECT_BINARY_DIR}")
  # Tests run build/gaggle, which exec()s gaggle-torch for the verbs that need LibTorch.
  add_dependencies(gaggle_test_${name} gaggle)
  if(TARGET gaggle-torch)
    add_dependencies(gaggle_test_${name} gaggle-torch)
    target_compile_definitions(gaggle_test_${name} PRIVATE GAGGLE_TORCH_BINARY="$<TARGET_FILE:gaggle-torch>")
  endif()
  if(T_TORCH)
    target_compile_options(gaggle_test_${name} PRIVATE -include ${PROJECT_SOURCE_DIR}/tests/support/torch_catch_prelude.h)
    gaggle_pin_openblas(gaggle_test_${name})
    add_test(NAME ${name} COMMAND gaggle_test_${name})
    set_tests_properties(${name} PROPERTIES LABELS "torch;${name}" TIMEOUT 1200)
  else()
    # A case that cannot run here (a test-only package missing) WARNs "GAGGLE-TEST-SKIPPED: why"
    # and returns: ctest reports it as skipped, not passed (Catch2 v2 has no SKIP).
    catch_discover_tests(gaggle_test_${name} TEST_PREFIX "${name}: " PROPERTIES LABELS ${name} TIMEOUT 600
                         SKIP_REGULAR_EXPRESSION "GAGGLE-TEST-SKIPPED")
  endif()
endfunction()
